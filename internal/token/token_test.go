package token

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/trustgate/trustgate/internal/attest"
)

func newIssuer(t *testing.T, now func() time.Time) *Issuer {
	t.Helper()
	k, _, err := LoadOrGenerateKey("")
	if err != nil {
		t.Fatal(err)
	}
	i, err := New(Options{Key: k, Build: "test", Now: now})
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func TestIssueVerify(t *testing.T) {
	t.Parallel()
	now := time.Now()
	clock := func() time.Time { return now }
	i := newIssuer(t, clock)
	guest, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tok, jti, exp, err := i.Issue(Appraisal{TEE: "sev-snp", Status: "affirming", PolicyID: "sha256:ab", Label: "build-1",
		TEEPubKey: &jose.JSONWebKey{Key: guest.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	if !exp.Equal(now.Add(DefaultLifetime)) {
		t.Fatalf("exp %v", exp)
	}
	ear, err := i.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	sm := ear.Submods["sev-snp"]
	if ear.ID != jti || sm.Status != "affirming" || sm.Label != "build-1" || sm.PolicyID != "sha256:ab" || sm.TEEPubKey == nil {
		t.Fatalf("claims %+v", ear)
	}
	// No raw claim in the payload.
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	var m map[string]any
	json.Unmarshal(payload, &m)
	for _, k := range []string{"measurement", "chip_id", "report_id", "report_data"} {
		if strings.Contains(string(payload), k) {
			t.Errorf("token payload mentions %s", k)
		}
	}

	other := newIssuer(t, clock)
	late := newIssuer(t, func() time.Time { return now.Add(DefaultLifetime + time.Second) })
	late.jwk, late.signer = i.jwk, i.signer
	cases := []struct {
		name string
		err  error
	}{
		{"other key", func() error { _, err := other.Verify(tok); return err }()},
		{"expired", func() error { _, err := late.Verify(tok); return err }()},
		{"garbage", func() error { _, err := i.Verify("a.b.c"); return err }()},
		{"tampered", func() error { _, err := i.Verify(tamper(tok)); return err }()},
	}
	for _, tc := range cases {
		if got := attest.ReasonOf(tc.err); got != attest.ReasonTokenInvalid {
			t.Errorf("%s: reason %q (%v), want token_invalid", tc.name, got, tc.err)
		}
	}
}

// A production issuer never honours a dev token: one from a dev issuer
// given the same key file is signed by another key (DevKey), and a token
// marked trustgate.dev_simulator is refused even under its own key. Dev
// issuers sharing a key file share their derived key.
func TestDevTokensNeverHonouredInProduction(t *testing.T) {
	t.Parallel()
	k, _, err := LoadOrGenerateKey("")
	if err != nil {
		t.Fatal(err)
	}
	newIss := func(dev bool) *Issuer {
		i, err := New(Options{Key: k, DevSimulator: dev})
		if err != nil {
			t.Fatal(err)
		}
		return i
	}
	prod, dev, dev2 := newIss(false), newIss(true), newIss(true)
	a := Appraisal{TEE: "sev-snp", Status: "affirming"}
	devTok, _, _, err := dev.Issue(a)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev2.Verify(devTok); err != nil {
		t.Fatalf("a dev replica sharing the key file: %v", err)
	}
	if prod.JWKS().Keys[0].KeyID == dev.JWKS().Keys[0].KeyID {
		t.Fatal("the dev issuer publishes the production key")
	}
	// A marked token under the production key itself.
	marked, err := json.Marshal(EAR{Claims: jwt.Claims{Issuer: "trustgate", ID: "x", Expiry: jwt.NewNumericDate(time.Now().Add(time.Minute))},
		Profile: EARProfile, Submods: map[string]Submodule{"sev-snp": {Status: "affirming"}}, DevSimulator: true})
	if err != nil {
		t.Fatal(err)
	}
	markedTok, err := prod.SignJWT(marked, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.Verify(markedTok); attest.ReasonOf(err) != attest.ReasonTokenInvalid {
		t.Errorf("the production key's token at a dev issuer: %v", err)
	}
	for name, tok := range map[string]string{"dev issuer's token": devTok, "marked, production key": markedTok} {
		if _, err := prod.Verify(tok); attest.ReasonOf(err) != attest.ReasonTokenInvalid {
			t.Errorf("%s at production: %v, want token_invalid", name, err)
		}
	}
}

// SignJWT signs with the token key under the JWKS kid, typ JWT, with the
// extra protected headers; it does not let them replace alg, kid or typ.
func TestSignJWT(t *testing.T) {
	t.Parallel()
	i := newIssuer(t, time.Now)
	s, err := i.SignJWT([]byte(`{"a":"Yg=="}`), map[string]any{"trustgate.x": "y"})
	if err != nil {
		t.Fatal(err)
	}
	obj, err := jose.ParseSigned(s, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	h := obj.Signatures[0].Protected
	if h.KeyID != i.JWKS().Keys[0].KeyID || h.ExtraHeaders["typ"] != "JWT" || h.ExtraHeaders["trustgate.x"] != "y" {
		t.Errorf("header %+v", h)
	}
	if b, err := obj.Verify(i.JWKS().Keys[0].Key); err != nil || string(b) != `{"a":"Yg=="}` {
		t.Errorf("verify: %q, %v", b, err)
	}
	for _, k := range []string{"alg", "kid", "typ", "crit", "jwk"} {
		if _, err := i.SignJWT([]byte(`{}`), map[string]any{k: "x"}); err == nil {
			t.Errorf("header %s replaced", k)
		}
	}
}

// Verify refuses, as token_invalid, a token signed by the issuer's own key
// whose claims break one structural rule each: issuer, time window, jti,
// EAR profile; and a token under another algorithm.
func TestVerifyStructure(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	i := newIssuer(t, func() time.Time { return now })
	good := func() EAR {
		return EAR{
			Claims: jwt.Claims{Issuer: "trustgate", ID: "jti-1", IssuedAt: jwt.NewNumericDate(now),
				NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))},
			Profile: EARProfile, Submods: map[string]Submodule{"sev-snp": {Status: "affirming"}},
		}
	}
	sign := func(e EAR) string {
		t.Helper()
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := i.SignJWT(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	if _, err := i.Verify(sign(good())); err != nil {
		t.Fatalf("the unbroken token: %v", err)
	}
	hs, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.HS256, Key: []byte("0123456789abcdef0123456789abcdef")}, nil)
	if err != nil {
		t.Fatal(err)
	}
	hsTok, err := jwt.Signed(hs).Claims(good()).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name   string
		mutate func(*EAR)
		tok    string // instead of the mutated good()
	}{
		{name: "other issuer", mutate: func(e *EAR) { e.Issuer = "someone-else" }},
		{name: "no issuer", mutate: func(e *EAR) { e.Issuer = "" }},
		{name: "expired", mutate: func(e *EAR) { e.Expiry = jwt.NewNumericDate(now.Add(-time.Second)) }},
		{name: "not yet valid", mutate: func(e *EAR) { e.NotBefore = jwt.NewNumericDate(now.Add(time.Second)) }},
		{name: "issued in the future", mutate: func(e *EAR) { e.IssuedAt = jwt.NewNumericDate(now.Add(time.Second)) }},
		{name: "no jti", mutate: func(e *EAR) { e.ID = "" }},
		{name: "no eat_profile", mutate: func(e *EAR) { e.Profile = "" }},
		{name: "other eat_profile", mutate: func(e *EAR) { e.Profile = "tag:example.com,2024:other" }},
		{name: "HS256", tok: hsTok},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tok := tc.tok
			if tok == "" {
				e := good()
				tc.mutate(&e)
				tok = sign(e)
			}
			if _, err := i.Verify(tok); attest.ReasonOf(err) != attest.ReasonTokenInvalid {
				t.Fatalf("reason %q (%v), want token_invalid", attest.ReasonOf(err), err)
			}
		})
	}
}

// New takes a P-256 key and nothing else: tokens are ES256.
func TestNewKeyCurve(t *testing.T) {
	t.Parallel()
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	for name, k := range map[string]*ecdsa.PrivateKey{"none": nil, "P-384": p384} {
		if _, err := New(Options{Key: k}); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

// tamper changes one character in the middle of tok's signature (the last
// characters carry padding bits a decoder may ignore, and may already be
// what a fixed replacement would write).
func tamper(tok string) string {
	b := []byte(tok)
	i := len(b) - 20
	if b[i] == 'A' {
		b[i] = 'B'
	} else {
		b[i] = 'A'
	}
	return string(b)
}
