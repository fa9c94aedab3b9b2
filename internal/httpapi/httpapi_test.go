package httpapi

import (
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
)

// Every built-in reason has its own client message and a 4xx/5xx status.
func TestEveryReasonHasMessageAndStatus(t *testing.T) {
	t.Parallel()
	seen := map[string]attest.Reason{}
	for _, r := range attest.Reasons() {
		m := message(r)
		if r != attest.ReasonInternalError && m == message(attest.ReasonInternalError) {
			t.Errorf("%s has no message of its own", r)
		}
		if prev, dup := seen[m]; dup && prev != attest.ReasonPolicyDenied && r != attest.ReasonPolicyDenied {
			t.Errorf("%s and %s share a message", prev, r)
		}
		seen[m] = r
		if s := r.Status(); s < 400 || s > 599 {
			t.Errorf("%s maps to status %d", r, s)
		}
	}
	if message("policy_region") != message(attest.ReasonPolicyDenied) {
		t.Error("a policy's own reason does not read as a policy denial")
	}
}
