package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
)

// Nitro attempts count under tee="nitro", whose series exist at 0 from the
// start, so the dashboard's tee variable (label_values of
// trustgate_attestations_total) offers it before the first attempt.
func TestNitroLabel(t *testing.T) {
	t.Parallel()
	m := New(func() string { return "sha256:abc" })
	before := scrape(t, m)
	for _, want := range []string{
		`trustgate_attestations_total{reason="none",result="pass",tee="nitro"} 0`,
		`trustgate_attestations_total{reason="debug_enabled",result="fail",tee="nitro"} 0`,
	} {
		if !strings.Contains(before, want) {
			t.Errorf("missing %s", want)
		}
	}
	m.Attested("nitro", attest.ReasonCertChainInvalid, time.Millisecond)
	m.Attested("nitro", "", time.Millisecond)
	out := scrape(t, m)
	for _, want := range []string{
		`trustgate_attestations_total{reason="cert_chain_invalid",result="fail",tee="nitro"} 1`,
		`trustgate_attestations_total{reason="none",result="pass",tee="nitro"} 1`,
		`trustgate_attestation_duration_seconds_count{tee="nitro"} 2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
}
