package release

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/trustgate/trustgate/client"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/challenge"
	"github.com/trustgate/trustgate/internal/resources"
	"github.com/trustgate/trustgate/internal/testkit"
	"github.com/trustgate/trustgate/internal/token"
)

// After a release the verifier holds one record, the token's id, and only
// until the token would have expired.
func TestReleaseKeepsOnlyTheJTIUntilExpiry(t *testing.T) {
	clock := testkit.NewClock(time.Now())
	f := newPolicyFixture(t, clock.Now)
	tokens, guest := f.tokens, f.guest
	used := challenge.NewMemoryStore(clock.Now)
	svc, err := New(Options{Tokens: tokens, Used: used, Resources: f.store})
	if err != nil {
		t.Fatal(err)
	}
	tok, _, exp, err := tokens.Issue(token.Appraisal{TEE: "sev-snp", Status: "affirming", Resources: []string{"s"},
		TEEPubKey: &jose.JSONWebKey{Key: guest.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if _, err := svc.Release(ctx, tok, []string{"nope"}); attest.ReasonOf(err) != attest.ReasonResourceForbidden || used.Len() != 0 {
		t.Fatalf("refusal: %v, %d records", err, used.Len())
	}
	jwe, err := svc.Release(ctx, tok, []string{"s"})
	if err != nil {
		t.Fatal(err)
	}
	got, err := client.OpenRelease(jwe, client.ReleaseCheck{Key: guest, Token: tok, Resources: []string{"s"}, VerifierKeys: tokens.JWKS()})
	if err != nil || string(got["s"]) != "secret" {
		t.Fatalf("Open: %q, %v", got, err)
	}
	if used.Len() != 1 {
		t.Fatalf("%d records after a release, want 1", used.Len())
	}
	if _, err := svc.Release(ctx, tok, []string{"s"}); attest.ReasonOf(err) != attest.ReasonTokenReplayed {
		t.Fatalf("second use: %v", err)
	}
	clock.Add(exp.Sub(clock.Now()) + time.Minute)
	used.Consume(ctx, "other", clock.Now(), clock.Now().Add(time.Second)) // sweeps
	if used.Len() != 1 {
		t.Fatalf("%d records after expiry, want only the new one", used.Len())
	}
}

// Every refusal of Release has its reason and leaves no record: tokens
// signed by the verifier's own key but shaped wrong, and requests for the
// wrong names.
func TestReleaseRefusals(t *testing.T) {
	t.Parallel()
	now := time.Unix(1_800_000_000, 0)
	signKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tokens, err := token.New(token.Options{Key: signKey, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "r")
	os.Mkdir(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "s"), []byte("secret"), 0o600)
	os.WriteFile(filepath.Join(dir, "t"), []byte("other"), 0o600)
	store, err := resources.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	guest, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	guestJWK := &jose.JSONWebKey{Key: guest.Public()}
	good := func() token.EAR {
		return token.EAR{
			Claims: jwt.Claims{Issuer: "trustgate", ID: "jti-1", IssuedAt: jwt.NewNumericDate(now),
				Expiry: jwt.NewNumericDate(now.Add(time.Minute))},
			Profile: token.EARProfile,
			Submods: map[string]token.Submodule{"sev-snp": {Status: "affirming", Resources: []string{"s", "t"}, TEEPubKey: guestJWK}},
		}
	}
	sign := func(e token.EAR) string {
		t.Helper()
		b, err := json.Marshal(e)
		if err != nil {
			t.Fatal(err)
		}
		tok, err := tokens.SignJWT(b, nil)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	many := make([]string, MaxResources+1)
	for i := range many {
		many[i] = fmt.Sprintf("r%d", i)
	}
	cases := []struct {
		name   string
		mutate func(*token.EAR)
		names  []string
		want   attest.Reason
	}{
		{name: "granted", names: []string{"s", "t"}},
		{name: "no expiry", mutate: func(e *token.EAR) { e.Expiry = nil }, names: []string{"s"}, want: attest.ReasonTokenInvalid},
		{name: "no submodule", mutate: func(e *token.EAR) { e.Submods = nil }, names: []string{"s"}, want: attest.ReasonTokenInvalid},
		{name: "two submodules", mutate: func(e *token.EAR) { e.Submods["tdx"] = e.Submods["sev-snp"] }, names: []string{"s"}, want: attest.ReasonTokenInvalid},
		{name: "not affirming", mutate: func(e *token.EAR) {
			sm := e.Submods["sev-snp"]
			sm.Status = "contraindicated"
			e.Submods["sev-snp"] = sm
		}, names: []string{"s"}, want: attest.ReasonTokenInvalid},
		{name: "no tee_pubkey", mutate: func(e *token.EAR) {
			sm := e.Submods["sev-snp"]
			sm.TEEPubKey = nil
			e.Submods["sev-snp"] = sm
		}, names: []string{"s"}, want: attest.ReasonResourceForbidden},
		{name: "no names", names: nil, want: attest.ReasonMalformedEvidence},
		{name: "too many names", names: many, want: attest.ReasonMalformedEvidence},
		{name: "a name asked for twice", names: []string{"s", "t", "s"}, want: attest.ReasonMalformedEvidence},
		{name: "an invalid name", names: []string{"s", "../s"}, want: attest.ReasonMalformedEvidence},
		{name: "a name not granted", mutate: func(e *token.EAR) {
			sm := e.Submods["sev-snp"]
			sm.Resources = []string{"s"}
			e.Submods["sev-snp"] = sm
		}, names: []string{"s", "t"}, want: attest.ReasonResourceForbidden},
		{name: "a name not granted nor stored", names: []string{"s", "u"}, want: attest.ReasonResourceForbidden},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			used := challenge.NewMemoryStore(func() time.Time { return now })
			svc, err := New(Options{Tokens: tokens, Used: used, Resources: store})
			if err != nil {
				t.Fatal(err)
			}
			e := good()
			if tc.mutate != nil {
				tc.mutate(&e)
			}
			_, err = svc.Release(context.Background(), sign(e), tc.names)
			if got := attest.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
			if want := map[bool]int{true: 0, false: 1}[tc.want != ""]; used.Len() != want {
				t.Fatalf("%d records, want %d", used.Len(), want)
			}
		})
	}
}
