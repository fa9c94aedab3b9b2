package attest

import (
	"fmt"
	"strings"
)

// Decision is a policy's verdict on one verified report (SPEC "Policy and
// reference values"): allow or not, the reasons for a deny (reason codes),
// and on allow the label and resources of the matched reference value.
type Decision struct {
	// Allow is true when the report passed the policy.
	Allow bool `json:"allow"`
	// Reasons are the failed checks of a deny, as reason codes, the
	// reported one first; empty on allow.
	Reasons []string `json:"reasons"`
	// Label names the matched reference value (the build); "" if none.
	Label string `json:"label,omitempty"`
	// Resources are what the guest may receive; nil means nothing.
	Resources []string `json:"resources,omitempty"`
}

// Err returns nil for an allow, and for a deny an *Error whose reason is the
// first of the decision's reasons that is a built-in appraisal code
// (measurement_mismatch, debug_enabled, vmpl_not_allowed,
// tcb_below_minimum, tcb_out_of_date, policy_denied) or a policy's own code (Reason.PolicyOwn:
// policy_[a-z0-9_]{1,40}; the policy engine lets only the codes a policy
// declares reach here), else policy_denied. A reason becomes a response
// field, a log value and a metric label, so any other string a policy
// returns is dropped: the detail counts such strings but never quotes them.
func (d Decision) Err() error {
	if d.Allow {
		return nil
	}
	var kept []string
	dropped := 0
	for _, r := range d.Reasons {
		if isPolicyReason(r) {
			kept = append(kept, r)
		} else {
			dropped++
		}
	}
	reason := ReasonPolicyDenied
	if len(kept) > 0 {
		reason = Reason(kept[0])
	}
	detail := strings.Join(kept, ", ")
	if dropped > 0 {
		if detail != "" {
			detail += "; "
		}
		detail += fmt.Sprintf("%d reason(s) neither built in nor declared by the policy dropped", dropped)
	}
	return Errorf(reason, "policy denied: %s", detail)
}

func isPolicyReason(r string) bool {
	switch Reason(r) {
	case ReasonMeasurementMismatch, ReasonDebugEnabled, ReasonVMPLNotAllowed, ReasonTCBBelowMinimum, ReasonPolicyDenied, ReasonTCBOutOfDate:
		return true
	}
	return Reason(r).PolicyOwn()
}
