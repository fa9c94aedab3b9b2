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
