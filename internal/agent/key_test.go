package agent

import (
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/verifier"
)

// The guest and the verifier bind the same REPORT_DATA for a nonce and
// the guest's key, and the key passes the verifier's tee_pubkey checks.
func TestEphemeralKeyBindsWhatTheVerifierExpects(t *testing.T) {
	t.Parallel()
	k, err := NewEphemeralKey()
	if err != nil {
		t.Fatal(err)
	}
	jwk, err := verifier.ParseTEEPubKey(k.JWK)
	if err != nil {
		t.Fatal(err)
	}
	n := attest.Nonce{1, 2, 3}
	want, err := verifier.ExpectedReportData(n, jwk)
	if err != nil {
		t.Fatal(err)
	}
	if k.ReportData(n) != want || len(k.Thumbprint) != 32 {
		t.Fatalf("REPORT_DATA %x, verifier expects %x", k.ReportData(n), want)
	}
	if other, _ := NewEphemeralKey(); other.ReportData(n) == want {
		t.Fatal("two keys bind the same REPORT_DATA")
	}
}
