package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
)

// The tee label's closed set is {sev-snp, tdx, unknown}; TDX attempts count
// under tdx, and TDX's reasons are there at 0 from the start for every TEE.
func TestTDXLabels(t *testing.T) {
	t.Parallel()
	m := New(func() string { return "sha256:abc" })
	m.Attested("tdx", attest.ReasonTCBOutOfDate, time.Millisecond)
	m.Attested("tdx", "", time.Millisecond)
	out := scrape(t, m)
	for _, want := range []string{
		`trustgate_attestations_total{reason="tcb_out_of_date",result="fail",tee="tdx"} 1`,
		`trustgate_attestations_total{reason="none",result="pass",tee="tdx"} 1`,
		`trustgate_attestations_total{reason="collateral_unavailable",result="fail",tee="tdx"} 0`,
		`trustgate_attestations_total{reason="collateral_invalid",result="fail",tee="sev-snp"} 0`,
		`trustgate_attestations_total{reason="tcb_revoked",result="fail",tee="unknown"} 0`,
		`trustgate_attestations_total{reason="policy_unavailable",result="fail",tee="tdx"} 0`,
		`trustgate_attestation_duration_seconds_count{tee="tdx"} 2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
}
