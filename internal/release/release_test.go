package release

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

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
	signKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tokens, err := token.New(token.Options{Key: signKey, Now: clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "r")
	os.Mkdir(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "s"), []byte("secret"), 0o600)
	store, err := resources.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	used := challenge.NewMemoryStore(clock.Now)
	svc, err := New(Options{Tokens: tokens, Used: used, Resources: store})
	if err != nil {
		t.Fatal(err)
	}
	guest, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
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
