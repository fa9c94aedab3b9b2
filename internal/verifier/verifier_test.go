package verifier

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/token"
)

type fakeSNP struct {
	claims *attest.Claims
	called *int // counts calls when not nil
}

func (f fakeSNP) Verify(context.Context, snp.Evidence) (*attest.Claims, error) {
	if f.called != nil {
		*f.called++
	}
	return f.claims, nil
}

type fakePolicy struct{ d attest.Decision }

func (f fakePolicy) Evaluate(context.Context, attest.Verified) (attest.Decision, error) {
	return f.d, nil
}
func (fakePolicy) ID() string { return "sha256:test" }

type fakeNonces struct {
	checkErr   error // what Check returns
	consumeErr error // what Consume returns
	consumed   int
	last       attest.Nonce // the nonce last consumed
}

func (f *fakeNonces) Check(attest.Nonce) error { return f.checkErr }
func (f *fakeNonces) Consume(_ context.Context, n attest.Nonce) error {
	if f.consumeErr != nil {
		return f.consumeErr
	}
	f.consumed++
	f.last = n
	return nil
}

type fakeTokens struct{ issued int }

func (f *fakeTokens) Issue(token.Appraisal) (string, string, time.Time, error) {
	f.issued++
	return "tok", "jti", time.Now(), nil
}

// The nonce is consumed and a token issued only when every check passed.
func TestNonceConsumedOnlyOnSuccess(t *testing.T) {
	t.Parallel()
	n := attest.Nonce{1, 2, 3}
	cases := []struct {
		name       string
		reportData attest.Nonce
		decision   attest.Decision
		want       attest.Reason
	}{
		{"affirmed", n, attest.Decision{Allow: true, Label: "b"}, ""},
		{"REPORT_DATA mismatch", attest.Nonce{9}, attest.Decision{Allow: true}, attest.ReasonReportDataMismatch},
		{"policy deny", n, attest.Decision{Reasons: []string{"measurement_mismatch"}}, attest.ReasonMeasurementMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nonces, tokens := &fakeNonces{}, &fakeTokens{}
			s, err := New(Options{SNP: fakeSNP{claims: &attest.Claims{ReportData: tc.reportData[:]}}, Policy: fakePolicy{tc.decision}, Nonces: nonces, Tokens: tokens})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Attest(context.Background(), AttestInput{Nonce: n, TEE: "sev-snp"})
			if got := attest.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q, want %q", got, tc.want)
			}
			ok := tc.want == ""
			if (nonces.consumed == 1) != ok || (tokens.issued == 1) != ok {
				t.Fatalf("consumed %d, issued %d", nonces.consumed, tokens.issued)
			}
		})
	}
}

// withMember adds a string member to a JWK.
func withMember(t *testing.T, raw json.RawMessage, k, v string) json.RawMessage {
	t.Helper()
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatal(err)
	}
	m[k] = v
	b, err := json.Marshal(m)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// ParseTEEPubKey takes a public EC key on P-256 or P-384 and nothing else:
// every other key type, curve, or a key with private parts is
// malformed_evidence, as is a JWK that does not parse.
func TestParseTEEPubKey(t *testing.T) {
	t.Parallel()
	jwk := func(k any) json.RawMessage {
		t.Helper()
		b, err := (&jose.JSONWebKey{Key: k}).MarshalJSON()
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	p521, _ := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	rsaKey, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		t.Fatal(err)
	}
	edPub, edPriv, _ := ed25519.GenerateKey(rand.Reader)
	x := base64.RawURLEncoding.EncodeToString(make([]byte, 32))
	cases := []struct {
		name string
		raw  json.RawMessage
		ok   bool
	}{
		{"P-256", jwk(p256.Public()), true},
		{"P-384", jwk(p384.Public()), true},
		{"absent", nil, true},
		{"P-521", jwk(p521.Public()), false},
		{"RSA", jwk(rsaKey.Public()), false},
		{"OKP Ed25519", jwk(edPub), false},
		{"OKP Ed25519 private", jwk(edPriv), false},
		{"OKP X25519", json.RawMessage(`{"kty":"OKP","crv":"X25519","x":"` + x + `"}`), false},
		{"EC P-256 private", jwk(p256), false},
		{"symmetric", jwk([]byte("0123456789abcdef0123456789abcdef")), false},
		{"not a point of the curve", json.RawMessage(`{"kty":"EC","crv":"P-256","x":"` + x + `","y":"` + x + `"}`), false},
		{"not JSON", json.RawMessage(`{"kty":`), false},
		{"JSON null", json.RawMessage(`null`), false},
		// Every member bounded (issue 21, item 13): the key goes into the token.
		{"kid of 64 bytes", withMember(t, jwk(p384.Public()), "kid", strings.Repeat("k", 64)), true},
		{"kid of 40,000 bytes", withMember(t, jwk(p384.Public()), "kid", strings.Repeat("k", 40000)), false},
		{"kid of 65 bytes", withMember(t, jwk(p384.Public()), "kid", strings.Repeat("k", 65)), false},
		{"alg of 65 bytes", withMember(t, jwk(p384.Public()), "alg", strings.Repeat("a", 65)), false},
		{"unknown member of 2,000 bytes", withMember(t, jwk(p384.Public()), "note", strings.Repeat("n", 2000)), false},
		{"x5u", withMember(t, jwk(p384.Public()), "x5u", "https://example.com/c.pem"), false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			k, err := ParseTEEPubKey(tc.raw)
			if tc.ok {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				if (k == nil) != (tc.raw == nil) {
					t.Fatalf("key %v for %s", k, tc.raw)
				}
				return
			}
			if got := attest.ReasonOf(err); got != attest.ReasonMalformedEvidence {
				t.Fatalf("reason %q (%v), want malformed_evidence", got, err)
			}
			if k != nil {
				t.Fatalf("a key came back with the error: %v", k)
			}
		})
	}
}

// POST /verify consumes the nonce that the verified REPORT_DATA holds, and
// nothing when the TEE verifier's REPORT_DATA is not the candidate nonce
// read from the body before the signature was checked.
func TestVerifyPlainConsumesTheVerifiedNonce(t *testing.T) {
	t.Parallel()
	body := make([]byte, snp.ReportSize)
	n := attest.Nonce{7, 7, 7}
	copy(body[0x50:0x90], n[:])
	allow := attest.Decision{Allow: true}
	cases := []struct {
		name       string
		reportData attest.Nonce
		decision   attest.Decision
		want       attest.Reason
	}{
		{"verified REPORT_DATA is the nonce", n, allow, ""},
		{"verified REPORT_DATA differs", attest.Nonce{8}, allow, attest.ReasonReportDataMismatch},
		{"policy deny", n, attest.Decision{Reasons: []string{"measurement_mismatch"}}, attest.ReasonMeasurementMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nonces := &fakeNonces{}
			s, err := New(Options{SNP: fakeSNP{claims: &attest.Claims{ReportData: tc.reportData[:]}},
				Policy: fakePolicy{tc.decision}, Nonces: nonces, Tokens: &fakeTokens{}})
			if err != nil {
				t.Fatal(err)
			}
			err = s.VerifyPlain(context.Background(), body)
			if got := attest.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
			if tc.want != "" {
				if nonces.consumed != 0 {
					t.Fatalf("a refused /verify consumed %d nonces", nonces.consumed)
				}
				return
			}
			if nonces.consumed != 1 || nonces.last != tc.reportData {
				t.Fatalf("consumed %d, last %x; want the verified REPORT_DATA once", nonces.consumed, nonces.last[:4])
			}
		})
	}
}

// A request the verifier refuses before or after the TEE verifier returns
// the refusal's reason and issues nothing: an unsupported TEE and an
// unknown nonce before the evidence is verified at all, a nonce that can
// no longer be consumed after.
func TestRefusalsAroundVerification(t *testing.T) {
	t.Parallel()
	n := attest.Nonce{5}
	body := make([]byte, snp.ReportSize)
	copy(body[0x50:0x90], n[:])
	unknown := attest.Errorf(attest.ReasonNonceInvalid, "no such nonce")
	lost := attest.Errorf(attest.ReasonStoreUnavailable, "store down")
	cases := []struct {
		name       string
		plain      bool // POST /verify instead of /v1/attest
		tee        string
		body       []byte
		nonces     fakeNonces
		want       attest.Reason
		wantVerify int // calls of the TEE verifier
	}{
		{name: "attest: unsupported tee", tee: "tdx", want: attest.ReasonMalformedEvidence},
		{name: "attest: unknown nonce", tee: "sev-snp", nonces: fakeNonces{checkErr: unknown}, want: attest.ReasonNonceInvalid},
		{name: "attest: nonce not consumed", tee: "sev-snp", nonces: fakeNonces{consumeErr: lost}, want: attest.ReasonStoreUnavailable, wantVerify: 1},
		{name: "verify: short body", plain: true, body: body[:snp.ReportSize-1], want: attest.ReasonMalformedEvidence},
		{name: "verify: unknown nonce", plain: true, body: body, nonces: fakeNonces{checkErr: unknown}, want: attest.ReasonNonceInvalid},
		{name: "verify: nonce not consumed", plain: true, body: body, nonces: fakeNonces{consumeErr: lost}, want: attest.ReasonStoreUnavailable, wantVerify: 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var verified int
			nonces, tokens := &tc.nonces, &fakeTokens{}
			s, err := New(Options{SNP: fakeSNP{claims: &attest.Claims{ReportData: n[:]}, called: &verified},
				Policy: fakePolicy{attest.Decision{Allow: true}}, Nonces: nonces, Tokens: tokens})
			if err != nil {
				t.Fatal(err)
			}
			if tc.plain {
				err = s.VerifyPlain(context.Background(), tc.body)
			} else {
				_, err = s.Attest(context.Background(), AttestInput{Nonce: n, TEE: tc.tee})
			}
			if got := attest.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
			if verified != tc.wantVerify || tokens.issued != 0 || nonces.consumed != 0 {
				t.Fatalf("verified %d (want %d), issued %d, consumed %d", verified, tc.wantVerify, tokens.issued, nonces.consumed)
			}
		})
	}
}

// FuzzParseTEEPubKey feeds the guest's JWK parser any bytes: it must not
// panic, and a key it accepts is a public EC key on P-256 or P-384 whose
// REPORT_DATA binding can be computed.
func FuzzParseTEEPubKey(f *testing.F) {
	for _, c := range []elliptic.Curve{elliptic.P256(), elliptic.P384(), elliptic.P521()} {
		k, _ := ecdsa.GenerateKey(c, rand.Reader)
		for _, key := range []any{k.Public(), k} {
			b, err := (&jose.JSONWebKey{Key: key}).MarshalJSON()
			if err != nil {
				f.Fatal(err)
			}
			f.Add(b)
		}
	}
	f.Add([]byte(`{"kty":"OKP","crv":"X25519","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}`))
	f.Add([]byte(`{"kty":"oct","k":"AAAA"}`))
	f.Add([]byte(`{"kty":"RSA","n":"AQAB","e":"AQAB"}`))
	f.Add([]byte(`null`))
	f.Fuzz(func(t *testing.T, raw []byte) {
		k, err := ParseTEEPubKey(raw)
		if err != nil {
			if attest.ReasonOf(err) != attest.ReasonMalformedEvidence || k != nil {
				t.Fatalf("refusal %v (reason %q) with key %v", err, attest.ReasonOf(err), k)
			}
			return
		}
		if k == nil {
			if len(raw) != 0 {
				t.Fatalf("no key and no error for %q", raw)
			}
			return
		}
		pub, ok := k.Key.(*ecdsa.PublicKey)
		if !ok || (pub.Curve != elliptic.P256() && pub.Curve != elliptic.P384()) || !k.IsPublic() {
			t.Fatalf("accepted %T", k.Key)
		}
		if _, err := ExpectedReportData(attest.Nonce{}, k); err != nil {
			t.Fatalf("an accepted key binds no REPORT_DATA: %v", err)
		}
	})
}
