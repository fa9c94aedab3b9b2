package verifier

import (
	"context"
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/snp"
)

// nonceSeer fails every verification, remembering the nonce its context
// carried.
type nonceSeer struct {
	n  *attest.Nonce
	ok *bool
}

func (f nonceSeer) Verify(ctx context.Context, _ snp.Evidence) (*attest.Claims, error) {
	*f.n, *f.ok = attest.NonceOf(ctx)
	return nil, attest.Errorf(attest.ReasonVCEKUnavailable, "KDS down")
}

// The SEV-SNP verification runs with the request's nonce in its context,
// so that the certificate service can bound the fetches one nonce causes
// (a nonce is consumed only after the signature verifies).
func TestVerificationCarriesTheNonce(t *testing.T) {
	t.Parallel()
	var seen attest.Nonce
	var ok bool
	s, err := New(Options{SNP: nonceSeer{&seen, &ok}, Policy: fakePolicy{}, Nonces: &fakeNonces{}, Tokens: &fakeTokens{}})
	if err != nil {
		t.Fatal(err)
	}
	n := attest.Nonce{4, 5, 6}
	s.Attest(context.Background(), AttestInput{Nonce: n, TEE: "sev-snp"})
	if !ok || seen != n {
		t.Fatalf("/v1/attest: verification saw nonce %v (%t)", seen[:3], ok)
	}
	report := make([]byte, snp.ReportSize)
	report[0x50] = 7 // REPORT_DATA is the nonce in /verify
	seen, ok = attest.Nonce{}, false
	s.VerifyPlain(context.Background(), report)
	if !ok || seen != (attest.Nonce{7}) {
		t.Fatalf("/verify: verification saw nonce %v (%t)", seen[:3], ok)
	}
}
