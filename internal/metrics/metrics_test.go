package metrics

import (
	"fmt"
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
		`trustgate_releases_total{reason="token_replayed",result="fail"} 1`,
		`trustgate_releases_total{reason="none",result="pass"} 0`,
		`trustgate_releases_total{reason="unauthorized_client",result="fail"} 0`,
		`trustgate_attestations_total{reason="unauthorized_client",result="fail",tee="unknown"} 0`,
		`trustgate_challenges_refused_total{reason="unauthorized_client"} 0`,
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

func scrape(t *testing.T, m *Metrics) string {
	t.Helper()
	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	return rec.Body.String()
}

// A policy's own reason codes become label values up to MaxPolicyReasons
// distinct ones; later ones, and anything not of the form
// policy_[a-z0-9_]{1,40}, do not.
func TestPolicyReasonsAreBounded(t *testing.T) {
	t.Parallel()
	m := New(func() string { return "sha256:abc" })
	for i := range MaxPolicyReasons + 10 {
		m.Attested("sev-snp", attest.Reason(fmt.Sprintf("policy_rule_%d", i)), time.Millisecond)
	}
	m.Attested("sev-snp", "policy_rule_0", time.Millisecond)           // admitted before: its own label
	m.Attested("sev-snp", "policy_AKIA SECRET\n\"}", time.Millisecond) // never produced by Decision.Err; still not a label
	m.Released("policy_rule_1")
	out := scrape(t, m)
	for _, want := range []string{
		`trustgate_attestations_total{reason="policy_rule_0",result="fail",tee="sev-snp"} 2`,
		fmt.Sprintf(`trustgate_attestations_total{reason="policy_rule_%d",result="fail",tee="sev-snp"} 1`, MaxPolicyReasons-1),
		`trustgate_attestations_total{reason="policy_denied",result="fail",tee="sev-snp"} 10`,
		`trustgate_attestations_total{reason="internal_error",result="fail",tee="sev-snp"} 1`,
		`trustgate_releases_total{reason="policy_rule_1",result="fail"} 1`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
	for _, no := range []string{fmt.Sprintf("policy_rule_%d", MaxPolicyReasons), "AKIA", "SECRET"} {
		if strings.Contains(out, no) {
			t.Errorf("%q is a label value", no)
		}
	}
}
