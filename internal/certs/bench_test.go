package certs

import (
	"context"
	"crypto/x509"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/tiered"
)

// benchService is a Service holding the real Turin VCEK in memory and a
// verified-looking Turin CRL of 64 serials (none of them this chain's):
// AMD's own CRLs are empty in practice, so this is the costlier case.
// Returns the request, the Turin report and the certificates Check gets.
func benchService(b *testing.B) (*Service, snp.KeyRequest, []byte, *x509.Certificate, *x509.Certificate) {
	b.Helper()
	read := func(name string) []byte {
		d, err := os.ReadFile(filepath.Join("..", "..", "testdata", "snp", name))
		if err != nil {
			b.Fatal(err)
		}
		return d
	}
	s, err := New(Config{Settings: tiered.Settings{NoDisk: true, Offline: true}})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	req, err := ParseKeyRequest("Turin:0910b4f884ff4ba9:fmc=1,bl=3,tee=2,snp=5,ucode=97")
	if err != nil {
		b.Fatal(err)
	}
	now := time.Now()
	der := read("openanolis-trustee-turin-vcek.der")
	e, err := s.newEntry(makeVKey(req), &record{DER: der, FetchedAt: now}, now)
	if err != nil {
		b.Fatal(err)
	}
	s.mem.Put(e.key, e)
	c := &crlState{small: map[uint64]struct{}{}, big: map[string]struct{}{}}
	c.FetchedAt, c.RefreshAt, c.UsableTill = now, now.Add(time.Hour), now.Add(2*time.Hour)
	for i := range 64 {
		c.small[uint64(0x40000+i)] = struct{}{}
	}
	s.crls[crlKey{snp.Turin, snp.SignerVCEK}].Store(c)
	ek, err := x509.ParseCertificate(der)
	if err != nil {
		b.Fatal(err)
	}
	pr, _ := snp.AMDRoots().Product(snp.Turin)
	return s, req, read("openanolis-trustee-turin-report.bin"), pr.ASK, ek
}

// BenchmarkWarmLookup is what the certificate service adds to one warm
// attestation: EndorsementKey answered from memory plus the revocation
// check.
func BenchmarkWarmLookup(b *testing.B) {
	s, req, _, ica, ek := benchService(b)
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := s.EndorsementKey(ctx, req); err != nil {
			b.Fatal(err)
		}
		if err := s.Check(ctx, snp.Turin, snp.SignerVCEK, ica, ek); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyWarm is one warm snp.Verifier.Verify of the real Turin
// report with its VCEK in the evidence (as internal/tee/snp measures it):
// the baseline BenchmarkWarmLookup is compared with.
func BenchmarkVerifyWarm(b *testing.B) {
	_, _, report, _, ek := benchService(b)
	benchVerify(b, snp.New(snp.Options{}), snp.Evidence{Report: report, EndorsementKey: ek.Raw})
}

// BenchmarkVerifyWarmThroughService is the same verification with the VCEK
// from the Service and revocation checked by it: the whole warm path.
func BenchmarkVerifyWarmThroughService(b *testing.B) {
	s, _, report, _, _ := benchService(b)
	benchVerify(b, snp.New(snp.Options{Keys: s, Revocation: s}), snp.Evidence{Report: report})
}

// benchVerify measures warm verifications of ev (the first, which fills
// the chain cache, is not measured).
func benchVerify(b *testing.B, v *snp.Verifier, ev snp.Evidence) {
	ctx := context.Background()
	if _, err := v.Verify(ctx, ev); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := v.Verify(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}
