package nitro

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha512"
	"math/big"
	"testing"

	"github.com/fxamacker/cbor/v2"
)

// BenchmarkNitroVerifyWarm is a full verification of a real document with
// its chain cached: COSE and payload decoding, chain lookup and validity,
// the ES384 signature over the Sig_structure, the strict field reading and
// the claims.
func BenchmarkNitroVerifyWarm(b *testing.B) {
	v := New(Options{Now: atTime(realAt)})
	ev := Evidence{Document: readDoc(b, "blocky-nitro-attestation.b64")}
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

// BenchmarkTwoECDSAP384 is two bare crypto/ecdsa P-384 verifications of
// the real document's signature over its Sig_structure (prepared outside
// the loop): the floor VerifyWarm is measured against.
func BenchmarkTwoECDSAP384(b *testing.B) {
	v := New(Options{Now: atTime(realAt)})
	f, err := frame(readDoc(b, "blocky-nitro-attestation.b64"))
	if err != nil {
		b.Fatal(err)
	}
	key, err := v.verifyChain(&f.env, realAt)
	if err != nil {
		b.Fatal(err)
	}
	sigStructure, err := sigStructure(f)
	if err != nil {
		b.Fatal(err)
	}
	digest := sha512.Sum384(sigStructure)
	r, s := new(big.Int).SetBytes(f.msg.Signature[:48]), new(big.Int).SetBytes(f.msg.Signature[48:])
	if !ecdsa.Verify(key, digest[:], r, s) {
		b.Fatal("the signature does not verify")
	}
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if !ecdsa.Verify(key, digest[:], r, s) || !ecdsa.Verify(key, digest[:], r, s) {
			b.Fatal("the signature does not verify")
		}
	}
}

// sigStructure is COSE's Sig_structure of a Sign1 without external data
// (RFC 9052, section 4.4), what ES384 signs.
func sigStructure(f *framed) ([]byte, error) {
	var protected []byte
	if err := cbor.Unmarshal(f.msg.Headers.RawProtected, &protected); err != nil {
		return nil, err
	}
	return cbor.Marshal([]any{"Signature1", protected, []byte{}, f.msg.Payload})
}
