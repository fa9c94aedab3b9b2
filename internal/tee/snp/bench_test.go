package snp

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha512"
	"crypto/x509"
	"math/big"
	"slices"
	"testing"
)

// benchSubject is the real Turin report and its VCEK: the newest product,
// whose extensions go-sev-guest cannot parse.
func benchSubject(b *testing.B) (report, vcek []byte) {
	return readTestdata(b, "openanolis-trustee-turin-report.bin"), readTestdata(b, "openanolis-trustee-turin-vcek.der")
}

// BenchmarkVerifyWarm is a full verification of a real report with the
// chain cache warm: framing, cache lookup, signature, structure, TCB and
// chip checks, claims.
func BenchmarkVerifyWarm(b *testing.B) {
	report, vcek := benchSubject(b)
	v := New(Options{Now: fixedTime(b, "")})
	ev := Evidence{Report: report, EndorsementKey: vcek}
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

// BenchmarkECDSAP384 is crypto/ecdsa's verification of the same report's
// signature and nothing else: the floor VerifyWarm is measured against.
func BenchmarkECDSAP384(b *testing.B) {
	report, vcek := benchSubject(b)
	cert, err := x509.ParseCertificate(vcek)
	if err != nil {
		b.Fatal(err)
	}
	pub := cert.PublicKey.(*ecdsa.PublicKey)
	digest := sha512.Sum384(report[:signedSize])
	le := func(f []byte) *big.Int { // 72-byte little-endian field
		be := slices.Clone(f)
		slices.Reverse(be)
		return new(big.Int).SetBytes(be)
	}
	r, s := le(report[0x2A0:0x2E8]), le(report[0x2E8:0x330])
	if !ecdsa.Verify(pub, digest[:], r, s) {
		b.Fatal("signature does not verify")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if !ecdsa.Verify(pub, digest[:], r, s) {
			b.Fatal("signature does not verify")
		}
	}
}

// BenchmarkVerifyCold verifies with an empty cache each time: chain
// verification (three RSA-PSS checks) dominates.
func BenchmarkVerifyCold(b *testing.B) {
	report, vcek := benchSubject(b)
	ev := Evidence{Report: report, EndorsementKey: vcek}
	ctx := context.Background()
	now := fixedTime(b, "")
	b.ReportAllocs()
	for b.Loop() {
		if _, err := New(Options{Now: now}).Verify(ctx, ev); err != nil {
			b.Fatal(err)
		}
	}
}
