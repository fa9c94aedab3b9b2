package attest

import (
	"strings"
)

// Decision is a policy's verdict on one verified report (SPEC "Policy and
// reference values"): allow or not, the reasons for a deny (reason codes),
// and on allow the label and resources of the matched reference value.
type Decision struct {
	Allow     bool     `json:"allow"`
	Reasons   []string `json:"reasons"`
	Label     string   `json:"label,omitempty"`
	Resources []string `json:"resources,omitempty"`
}

// Err returns nil for an allow, and for a deny an *Error whose reason is the
// first of the decision's reasons that is a built-in appraisal code or a
// policy's own "policy_<name>" code, else policy_denied.
func (d Decision) Err() error {
	if d.Allow {
		return nil
	}
	for _, r := range d.Reasons {
		switch Reason(r) {
		case ReasonMeasurementMismatch, ReasonDebugEnabled, ReasonVMPLNotAllowed, ReasonTCBBelowMinimum:
			return Errorf(Reason(r), "policy denied: %s", strings.Join(d.Reasons, ", "))
		}
		if strings.HasPrefix(r, "policy_") && len(r) > len("policy_") {
			return Errorf(Reason(r), "policy denied: %s", strings.Join(d.Reasons, ", "))
		}
	}
	return Errorf(ReasonPolicyDenied, "policy denied: %s", strings.Join(d.Reasons, ", "))
}
