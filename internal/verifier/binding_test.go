package verifier

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustgate/trustgate/internal/attest"
)

// With a tee_pubkey, REPORT_DATA must be SHA-512(nonce ‖ thumbprint) (SPEC
// "HTTP API v1" rule 2): the nonce alone, which binds no key, is
// report_data_mismatch, and so is the binding of another key.
func TestAttestBindsTheKey(t *testing.T) {
	t.Parallel()
	n := attest.Nonce{7}
	jwk := func() *jose.JSONWebKey {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		return &jose.JSONWebKey{Key: k.Public()}
	}
	key, other := jwk(), jwk()
	bound := func(k *jose.JSONWebKey) []byte {
		tp, err := k.Thumbprint(crypto.SHA256)
		if err != nil {
			t.Fatal(err)
		}
		b := attest.BindReportData(n, tp)
		return b[:]
	}
	cases := []struct {
		name       string
		reportData []byte
		want       attest.Reason
	}{
		{name: "nonce and this key", reportData: bound(key)},
		{name: "the nonce alone", reportData: n[:], want: attest.ReasonReportDataMismatch},
		{name: "nonce and another key", reportData: bound(other), want: attest.ReasonReportDataMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nonces, tokens := &fakeNonces{}, &fakeTokens{}
			s, err := New(Options{SNP: fakeSNP{claims: &attest.Claims{ReportData: tc.reportData}},
				Policy: fakePolicy{attest.Decision{Allow: true}}, Nonces: nonces, Tokens: tokens})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Attest(context.Background(), AttestInput{Nonce: n, TEE: attest.TEESEVSNP, TEEPubKey: key})
			if got := attest.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
			if wantIssued := map[bool]int{true: 1, false: 0}[tc.want == ""]; tokens.issued != wantIssued || nonces.consumed != wantIssued {
				t.Fatalf("issued %d, consumed %d; want %d", tokens.issued, nonces.consumed, wantIssued)
			}
		})
	}
}
