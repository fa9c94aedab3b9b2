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
		{"tampered", func() error { _, err := i.Verify(tok[:len(tok)-2] + "AA"); return err }()},
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
	for _, k := range []string{"alg", "kid", "typ"} {
		if _, err := i.SignJWT([]byte(`{}`), map[string]any{k: "x"}); err == nil {
			t.Errorf("header %s replaced", k)
		}
	}
}
