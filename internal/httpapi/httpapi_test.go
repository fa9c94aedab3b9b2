package httpapi

import (
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
)

// Every built-in reason has its own client message and a 4xx/5xx status.
func TestEveryReasonHasMessageAndStatus(t *testing.T) {
	t.Parallel()
	seen := map[string]attest.Reason{}
	for _, r := range attest.Reasons() {
		m := message(r, attest.TEESEVSNP)
		if r != attest.ReasonInternalError && m == message(attest.ReasonInternalError, attest.TEESEVSNP) {
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
	if message("policy_region", "") != message(attest.ReasonPolicyDenied, "") {
		t.Error("a policy's own reason does not read as a policy denial")
	}
}

// Each TEE's refusals are in its own words (issue 21, item 8): no AMD or
// guest-policy words for a TDX quote, none of Intel's for an SNP report,
// and none of either for a TEE without words of its own.
func TestMessagesInEachTEEsWords(t *testing.T) {
	t.Parallel()
	for _, r := range attest.Reasons() {
		for tee, foreign := range map[string][]string{
			attest.TEESEVSNP: {"Intel", "TD ", "quote", "PCK"},
			"azure-snp":      {"Intel", "TD ", "quote", "PCK"},
			attest.TEETDX:    {"AMD", "guest policy", "report signature", "endorsement key does not chain"},
			"azure-tdx":      {"AMD", "guest policy", "report signature", "endorsement key does not chain"},
			"nitro":          {"AMD", "guest policy", "TD ", "PCK"},
		} {
			m := message(r, tee)
			for _, w := range foreign {
				if r != attest.ReasonCollateralUnavailable && r != attest.ReasonCollateralInvalid && strings.Contains(m, w) {
					t.Errorf("%s for %s: %q has %q", r, tee, m, w)
				}
			}
		}
	}
	if message(attest.ReasonDebugEnabled, attest.TEETDX) == message(attest.ReasonDebugEnabled, attest.TEESEVSNP) {
		t.Error("debug_enabled reads the same for TDX and SEV-SNP")
	}
}
