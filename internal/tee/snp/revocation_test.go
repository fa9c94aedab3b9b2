package snp

import (
	"context"
	"crypto/x509"
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
)

type revokeAll struct{ calls int }

func (r *revokeAll) Check(_ context.Context, p Product, s Signer, ica, ek *x509.Certificate) error {
	r.calls++
	if ica == nil || ek == nil || p != Milan || s != SignerVCEK {
		return attest.Errorf(attest.ReasonInternalError, "checker got %s %s %v %v", p, s, ica, ek)
	}
	return attest.Errorf(attest.ReasonCertRevoked, "VCEK serial %s revoked", ek.SerialNumber)
}

// A revoked key fails with cert_revoked even when its chain is cached, and
// leaves the chain cache.
func TestRevocationCheckedOnEveryUseAndPurged(t *testing.T) {
	t.Parallel()
	rr := realReports[2] // trustee-report.bin, Milan VCEK
	v := New(Options{Now: fixedTime(t, "")})
	ev, err := DecodeReport(readTestdata(t, rr.report))
	if err != nil {
		t.Fatal(err)
	}
	ev.EndorsementKey = readTestdata(t, rr.cert)
	if _, err := v.Verify(context.Background(), ev); err != nil {
		t.Fatal(err)
	}
	if v.cache.Len() != 1 {
		t.Fatalf("cache holds %d chains, want 1", v.cache.Len())
	}
	checker := &revokeAll{}
	v.revocation = checker
	_, err = v.Verify(context.Background(), ev)
	if got := attest.ReasonOf(err); got != attest.ReasonCertRevoked {
		t.Fatalf("reason %s (%v), want cert_revoked", got, err)
	}
	if checker.calls != 1 || v.cache.Len() != 0 {
		t.Fatalf("checker called %d times, cache holds %d chains; want 1 and 0", checker.calls, v.cache.Len())
	}
}
