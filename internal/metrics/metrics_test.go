package metrics

import (
	"io"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
)

// A client-chosen tee never becomes a label value; reasons and results do
// as documented; every known series is exposed at 0 from the start.
func TestLabels(t *testing.T) {
	m := New(func() string { return "sha256:abc" })
	m.Attested("sev-snp", "", time.Millisecond)
	m.Attested("tdx\"}evil", attest.ReasonNonceReplayed, time.Millisecond)
	m.Released(attest.ReasonTokenReplayed)
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	out := string(body)
	for _, want := range []string{
		`trustgate_attestations_total{reason="none",result="pass",tee="sev-snp"} 1`,
		`trustgate_attestations_total{reason="nonce_replayed",result="fail",tee="unknown"} 1`,
		`trustgate_attestations_total{reason="cert_revoked",result="fail",tee="sev-snp"} 0`,
		`trustgate_releases_total{result="fail"} 1`,
		`trustgate_releases_total{result="pass"} 0`,
		`trustgate_cert_cache_lookups_total{result="stale"} 0`,
		`trustgate_kds_requests_total{code="200",kind="crl"} 0`,
		`trustgate_kds_requests_total{code="error",kind="vcek"} 0`,
		`trustgate_policy_info{policy_id="sha256:abc"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(out, "evil") {
		t.Error("a client-chosen tee reached a label")
	}
}
