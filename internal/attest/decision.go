package attest

import (
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

// maxPolicyReasonLen bounds a policy's own reason code, a metric label
// value.
const maxPolicyReasonLen = 64

// Err returns nil for an allow, and for a deny an *Error whose reason is the
// first of the decision's reasons that is a built-in appraisal code
// (measurement_mismatch, debug_enabled, vmpl_not_allowed,
// tcb_below_minimum) or a policy's own code ("policy_" and up to 57 more
// of [a-z0-9_]), else policy_denied. Other strings are kept in the
// message only: a reason becomes a metric label, so it must come from a
// closed, well-formed set.
func (d Decision) Err() error {
	if d.Allow {
		return nil
	}
	reason := ReasonPolicyDenied
	for _, r := range d.Reasons {
		if isPolicyReason(r) {
			reason = Reason(r)
			break
		}
	}
	return Errorf(reason, "policy denied: %s", strings.Join(d.Reasons, ", "))
}

func isPolicyReason(r string) bool {
	switch Reason(r) {
	case ReasonMeasurementMismatch, ReasonDebugEnabled, ReasonVMPLNotAllowed, ReasonTCBBelowMinimum, ReasonPolicyDenied:
		return true
	}
	name, ok := strings.CutPrefix(r, "policy_")
	if !ok || name == "" || len(r) > maxPolicyReasonLen {
		return false
	}
	for _, c := range name {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}
