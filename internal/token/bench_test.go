package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// BenchmarkIssue is one token as the attest pipeline signs it.
func BenchmarkIssue(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	guest, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	iss, err := New(Options{Key: key, Build: "bench"})
	if err != nil {
		b.Fatal(err)
	}
	a := Appraisal{TEE: "sev-snp", Status: "affirming", PolicyID: "sha256:0123456789abcdef", Label: "build-1",
		Resources: []string{"db-password"}, TEEPubKey: &jose.JSONWebKey{Key: guest.Public()}}
	b.ReportAllocs()
	for b.Loop() {
		if _, _, _, err := iss.Issue(a); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkES256 is the bare ECDSA P-256 signature of a token: the floor
// BenchmarkIssue is compared with.
func BenchmarkES256(b *testing.B) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	h := sha256.Sum256(make([]byte, 600))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ecdsa.SignASN1(rand.Reader, key, h[:]); err != nil {
			b.Fatal(err)
		}
	}
}
