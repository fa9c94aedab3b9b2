package httpapi

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/verifier"
)

// fuzzDomain records what the handler passed on to the domain.
type fuzzDomain struct {
	attested *verifier.AttestInput
	token    string
	names    []string
	released bool
}

func (d *fuzzDomain) Attest(_ context.Context, in verifier.AttestInput) (string, error) {
	d.attested = &in
	return "tok", nil
}
func (*fuzzDomain) VerifyPlain(context.Context, []byte) error { return nil }
func (d *fuzzDomain) Release(_ context.Context, tok string, names []string) (string, error) {
	d.token, d.names, d.released = tok, names, true
	return "jwe", nil
}
func (*fuzzDomain) Issue() (attest.Nonce, time.Time) { return attest.Nonce{}, time.Unix(0, 0) }
func (*fuzzDomain) PolicyID() string                 { return "sha256:x" }
func (*fuzzDomain) Ready() error                     { return nil }

func fuzzHandler(d *fuzzDomain) http.Handler {
	return New(Options{Attester: d, Releaser: d, Challenger: d, Health: d,
		JWKS: func() jose.JSONWebKeySet { return jose.JSONWebKeySet{} }})
}

// refusedAs checks that a request the domain never saw was answered with
// a client error naming one of the reasons.
func refusedAs(t *testing.T, w *httptest.ResponseRecorder, reasons ...attest.Reason) {
	t.Helper()
	var e v1.Error
	if err := json.Unmarshal(w.Body.Bytes(), &e); err != nil {
		t.Fatalf("status %d, body %q: %v", w.Code, w.Body.Bytes(), err)
	}
	if w.Code < 400 || w.Code > 499 || !slices.Contains(reasons, attest.Reason(e.Reason)) {
		t.Fatalf("status %d, reason %q; want a 4xx with one of %v", w.Code, e.Reason, reasons)
	}
}

// FuzzAttestRequest feeds POST /v1/attest any body. What reaches the
// verifier has a 64-byte nonce and, if any, a public EC key on P-256 or
// P-384; everything else is a 4xx malformed_evidence, never a panic.
func FuzzAttestRequest(f *testing.F) {
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), bytes.Repeat([]byte{7}, 32))
	if err != nil {
		f.Fatal(err)
	}
	jwk, err := (&jose.JSONWebKey{Key: k.Public()}).MarshalJSON()
	if err != nil {
		f.Fatal(err)
	}
	for _, req := range []v1.AttestRequest{
		{Nonce: make([]byte, 64), TEE: "sev-snp", Evidence: v1.SNPEvidence{Report: make([]byte, 1184)}, TEEPubKey: jwk},
		{Nonce: make([]byte, 64), TEE: "sev-snp", Evidence: v1.SNPEvidence{Report: make([]byte, 1184), CertTable: make([]byte, 24)}},
		{Nonce: make([]byte, 63), TEE: "sev-snp"},
	} {
		b, err := json.Marshal(req)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"nonce":null,"tee":"sev-snp","evidence":{},"tee_pubkey":{"kty":"oct","k":"AAAA"}}`))
	f.Add([]byte(`{"nonce":"","extra":1}`))
	f.Add([]byte(`{} {}`))
	f.Fuzz(func(t *testing.T, body []byte) {
		d := &fuzzDomain{}
		w := httptest.NewRecorder()
		fuzzHandler(d).ServeHTTP(w, httptest.NewRequest(http.MethodPost, v1.PathAttest, bytes.NewReader(body)))
		if d.attested == nil {
			refusedAs(t, w, attest.ReasonMalformedEvidence)
			return
		}
		if w.Code != http.StatusOK {
			t.Fatalf("the verifier affirmed, the answer is %d", w.Code)
		}
		if k := d.attested.TEEPubKey; k != nil {
			pub, ok := k.Key.(*ecdsa.PublicKey)
			if !ok || (pub.Curve != elliptic.P256() && pub.Curve != elliptic.P384()) {
				t.Fatalf("tee_pubkey %T passed on", k.Key)
			}
			if _, err := k.Thumbprint(crypto.SHA256); err != nil {
				t.Fatalf("a key passed on has no thumbprint: %v", err)
			}
		}
	})
}

// FuzzReleaseRequest feeds POST /v1/release any Authorization header and
// body. What reaches the release service is a non-empty bearer token and
// the names of a strict JSON body; everything else is a 4xx
// token_invalid or malformed_evidence, never a panic.
func FuzzReleaseRequest(f *testing.F) {
	f.Add("Bearer a.b.c", []byte(`{"resources":["db-password"]}`))
	f.Add("bearer  a.b.c ", []byte(`{"resources":["a","b"]}`))
	f.Add("Bearer", []byte(`{"resources":[]}`))
	f.Add("Basic dXNlcjpwdw==", []byte(`{"resources":["a"]}`))
	f.Add("Bearer t", []byte(`{"resources":["a"],"x":1}`))
	f.Add("Bearer t", []byte(`{"resources":null} []`))
	f.Fuzz(func(t *testing.T, auth string, body []byte) {
		d := &fuzzDomain{}
		r := httptest.NewRequest(http.MethodPost, v1.PathRelease, bytes.NewReader(body))
		r.Header.Set("Authorization", auth)
		w := httptest.NewRecorder()
		fuzzHandler(d).ServeHTTP(w, r)
		if !d.released {
			refusedAs(t, w, attest.ReasonTokenInvalid, attest.ReasonMalformedEvidence)
			return
		}
		if w.Code != http.StatusOK {
			t.Fatalf("released, the answer is %d", w.Code)
		}
		if d.token == "" || d.token != strings.TrimSpace(d.token) {
			t.Fatalf("token %q passed on", d.token)
		}
		var req v1.ReleaseRequest
		if err := json.Unmarshal(body, &req); err != nil || !slices.Equal(req.Resources, d.names) {
			t.Fatalf("names %q passed on for body %q (%v)", d.names, body, err)
		}
	})
}

// Found by the fuzz targets: a body is exactly one JSON object (not null,
// nothing after it, not even a stray '}'), and a bearer token of spaces
// is no token.
func TestRequestsRefusedBeforeTheDomain(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, path, auth, body string
		want                   attest.Reason
	}{
		{"release: a token of spaces", v1.PathRelease, "Bearer   ", `{"resources":["a"]}`, attest.ReasonTokenInvalid},
		{"release: a stray brace after the object", v1.PathRelease, "Bearer t", `{"resources":["a"]}}`, attest.ReasonMalformedEvidence},
		{"release: a stray bracket after the object", v1.PathRelease, "Bearer t", `{"resources":["a"]}]`, attest.ReasonMalformedEvidence},
		{"release: null", v1.PathRelease, "Bearer t", `null`, attest.ReasonMalformedEvidence},
		{"attest: null", v1.PathAttest, "", ` null`, attest.ReasonMalformedEvidence},
		{"attest: a stray brace after the object", v1.PathAttest, "", `{"nonce":"` + strings.Repeat("A", 86) + `==","tee":"sev-snp","evidence":{}}}`, attest.ReasonMalformedEvidence},
		// Strict JSON (issue 21, item 15): no key twice, every key spelled
		// exactly, and /v1/challenge takes no body but {}.
		{"attest: a key twice", v1.PathAttest, "", `{"nonce":"` + strings.Repeat("A", 86) + `==","tee":"tdx","tee":"sev-snp","evidence":{}}`, attest.ReasonMalformedEvidence},
		{"attest: a key twice, escaped", v1.PathAttest, "", `{"nonce":"` + strings.Repeat("A", 86) + `==","tee":"tdx","t\u0065e":"sev-snp","evidence":{}}`, attest.ReasonMalformedEvidence},
		{"attest: a key twice in evidence", v1.PathAttest, "", `{"nonce":"` + strings.Repeat("A", 86) + `==","tee":"sev-snp","evidence":{"report":"AA==","report":"AQ=="}}`, attest.ReasonMalformedEvidence},
		{"attest: a key in capitals", v1.PathAttest, "", `{"NONCE":"` + strings.Repeat("A", 86) + `==","tee":"sev-snp","evidence":{}}`, attest.ReasonMalformedEvidence},
		{"attest: a nested key in other case", v1.PathAttest, "", `{"nonce":"` + strings.Repeat("A", 86) + `==","tee":"sev-snp","evidence":{"Report":"AA=="}}`, attest.ReasonMalformedEvidence},
		{"release: a key in other case", v1.PathRelease, "Bearer t", `{"Resources":["a"]}`, attest.ReasonMalformedEvidence},
		{"release: a key twice", v1.PathRelease, "Bearer t", `{"resources":["a"],"resources":["b"]}`, attest.ReasonMalformedEvidence},
		{"challenge: a body", v1.PathChallenge, "", `{"nonce":"x"}`, attest.ReasonMalformedEvidence},
		{"challenge: not JSON", v1.PathChallenge, "", `hello`, attest.ReasonMalformedEvidence},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := &fuzzDomain{}
			r := httptest.NewRequest(http.MethodPost, tc.path, strings.NewReader(tc.body))
			r.Header.Set("Authorization", tc.auth)
			w := httptest.NewRecorder()
			fuzzHandler(d).ServeHTTP(w, r)
			if d.released || d.attested != nil {
				t.Fatal("the domain was called")
			}
			refusedAs(t, w, tc.want)
		})
	}
}
