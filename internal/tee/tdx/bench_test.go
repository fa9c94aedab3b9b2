package tdx

import (
	"context"
	"crypto/ecdsa"
	"testing"
)

// benchSubject is a real quote whose platform is UpToDate, with its 2025
// collateral.
func benchSubject(b *testing.B) (*Verifier, Evidence) {
	v := New(Options{Collateral: collateral(b, collateral2025...), Now: at(b, at2025)})
	return v, Evidence{Quote: readQuote(b, "teekit-phala-quote.dat")}
}

// BenchmarkTDXVerifyWarm is a full verification of a real quote with the
// PCK chain and the collateral's verdicts cached: framing, chain lookup,
// QE report signature and binding, quote signature, claims, CRLs, TCB info
// and QE identity checks, TCB level matching.
func BenchmarkTDXVerifyWarm(b *testing.B) {
	v, ev := benchSubject(b)
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

// BenchmarkTwoECDSAP256 is crypto/ecdsa's two verifications every quote
// needs and nothing else — the QE report's under the PCK key and the
// quote's under the attestation key: the floor VerifyWarm is measured
// against.
func BenchmarkTwoECDSAP256(b *testing.B) {
	v, ev := benchSubject(b)
	f, err := frame(ev.Quote)
	if err != nil {
		b.Fatal(err)
	}
	pck, err := v.verifyPCKChain(f.pckChain, v.now())
	if err != nil {
		b.Fatal(err)
	}
	att, err := p256Key(f.attKey)
	if err != nil {
		b.Fatal(err)
	}
	var keys = [2]*ecdsa.PublicKey{pck.key, att}
	if !verifyP256(keys[0], f.qeReport, f.qeSig) || !verifyP256(keys[1], f.signed, f.sig) {
		b.Fatal("signatures do not verify")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if !verifyP256(keys[0], f.qeReport, f.qeSig) || !verifyP256(keys[1], f.signed, f.sig) {
			b.Fatal("signatures do not verify")
		}
	}
}
