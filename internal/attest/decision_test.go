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
		})
	}
}
