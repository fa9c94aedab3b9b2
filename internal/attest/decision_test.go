package attest

import (
	"errors"
	"strings"
	"testing"
)

func TestDecisionErr(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		d    Decision
		want Reason // "" = nil error
	}{
		{"allow", Decision{Allow: true}, ""},
		{"built-in first", Decision{Reasons: []string{"debug_enabled", "vmpl_not_allowed"}}, ReasonDebugEnabled},
		{"each built-in", Decision{Reasons: []string{"tcb_below_minimum"}}, ReasonTCBBelowMinimum},
		{"policy's own code", Decision{Reasons: []string{"policy_region"}}, "policy_region"},
		{"free text skipped", Decision{Reasons: []string{"wrong region", "vmpl_not_allowed"}}, ReasonVMPLNotAllowed},
		{"only free text", Decision{Reasons: []string{"wrong region"}}, ReasonPolicyDenied},
		{"no reasons", Decision{}, ReasonPolicyDenied},
		{"non-policy code", Decision{Reasons: []string{"signature_invalid"}}, ReasonPolicyDenied},
		{"bare prefix", Decision{Reasons: []string{"policy_"}}, ReasonPolicyDenied},
		{"upper case", Decision{Reasons: []string{"policy_Region"}}, ReasonPolicyDenied},
		{"per-guest value", Decision{Reasons: []string{"policy_" + strings.Repeat("ab", 48)}}, ReasonPolicyDenied},
		{"name of 40", Decision{Reasons: []string{"policy_" + strings.Repeat("x", 40)}}, Reason("policy_" + strings.Repeat("x", 40))},
		{"name of 41", Decision{Reasons: []string{"policy_" + strings.Repeat("x", 41), "debug_enabled"}}, ReasonDebugEnabled},
		{"hostile", Decision{Reasons: []string{hostileReason}}, ReasonPolicyDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := tc.d.Err()
			if tc.want == "" {
				if err != nil {
					t.Fatalf("allow gave %v", err)
				}
				return
			}
			var ae *Error
			if !errors.As(err, &ae) || ae.Reason != tc.want {
				t.Fatalf("reason %q, want %q", ReasonOf(err), tc.want)
			}
			for _, r := range tc.d.Reasons {
				if len(r) > len("policy_") && !isPolicyReason(r) && strings.Contains(err.Error(), r) {
					t.Errorf("the error quotes the dropped reason %q: %v", r, err)
				}
			}
		})
	}
}

// hostileReason is what a careless or hostile policy might return: long,
// upper case, with spaces, a newline, quotes and a label-breaking brace.
const hostileReason = "policy_AKIA1234 SECRET\n\"}evil{\" " + "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx"
