package release

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/redis/go-redis/v9"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/challenge"
	"github.com/trustgate/trustgate/internal/policyids"
	"github.com/trustgate/trustgate/internal/resources"
	"github.com/trustgate/trustgate/internal/testkit"
	"github.com/trustgate/trustgate/internal/token"
)

// policyFixture is a token issuer and one resource, "s".
type policyFixture struct {
	tokens *token.Issuer
	store  resources.Store
	guest  *ecdsa.PrivateKey
}

func newPolicyFixture(t *testing.T, now func() time.Time) policyFixture {
	t.Helper()
	signKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tokens, err := token.New(token.Options{Key: signKey, Now: now})
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
	guest, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	return policyFixture{tokens: tokens, store: store, guest: guest}
}

func (f policyFixture) issue(t *testing.T, policyID string) string {
	t.Helper()
	tok, _, _, err := f.tokens.Issue(token.Appraisal{TEE: "sev-snp", Status: "affirming", PolicyID: policyID, Resources: []string{"s"},
		TEEPubKey: &jose.JSONWebKey{Key: f.guest.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// Without Redis: a token whose appraisal-policy-id this process never had
// in force is token_invalid and leaves no record; one appraised under a
// policy replaced since still releases within its lifetime; one whose
// policy was last in force more than policyids.Grace before it was issued
// is refused.
func TestReleaseRefusesUnknownPolicyID(t *testing.T) {
	clock := testkit.NewClock(time.Now())
	var cur atomic.Value
	cur.Store("sha256:one")
	ids := policyids.New(func() string { return cur.Load().(string) }, clock.Now, nil)
	f := newPolicyFixture(t, clock.Now)
	used := challenge.NewMemoryStore(clock.Now)
	svc, err := New(Options{Tokens: f.tokens, Used: used, Resources: f.store, Policies: ids})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()

	_, err = svc.Release(ctx, f.issue(t, "sha256:never"), []string{"s"})
	if attest.ReasonOf(err) != attest.ReasonTokenInvalid || used.Len() != 0 {
		t.Fatalf("unknown policy id: %v, %d records; want token_invalid and none", err, used.Len())
	}
	if _, err := svc.Release(ctx, f.issue(t, "sha256:one"), []string{"s"}); err != nil {
		t.Fatalf("the policy in force: %v", err)
	}

	// Appraised under "one", which is then replaced: still releases.
	ids.ID()
	old := f.issue(t, "sha256:one")
	cur.Store("sha256:two")
	ids.ID()
	clock.Add(30 * time.Second)
	if _, err := svc.Release(ctx, old, []string{"s"}); err != nil {
		t.Fatalf("a policy replaced within the token's lifetime: %v", err)
	}

	// A token claiming "one", issued long after "one" was last in force.
	clock.Add(policyids.Grace + time.Minute)
	if _, err := svc.Release(ctx, f.issue(t, "sha256:one"), []string{"s"}); attest.ReasonOf(err) != attest.ReasonTokenInvalid {
		t.Fatalf("a policy last in force long before the token: %v, want token_invalid", err)
	}
	if _, err := svc.Release(ctx, f.issue(t, "sha256:two"), []string{"s"}); err != nil {
		t.Fatalf("the policy in force: %v", err)
	}
}

// With Redis, two replicas: what one had in force is known to the other
// (a token appraised at A releases at B, whose policy differs), checked by
// the one script that records the token's use; an id no replica had in
// force, or one last in force long before the token, is token_invalid and
// the token stays unused.
func TestReleaseFleetPolicyIDs(t *testing.T) {
	rdbA := testkit.StartRedis(t)
	rdbB := redis.NewClient(&redis.Options{Addr: rdbA.Options().Addr})
	t.Cleanup(func() { rdbB.Close() })
	ctx := context.Background()
	f := newPolicyFixture(t, nil)

	replica := func(c *redis.Client, policyID *atomic.Value) (*Service, *policyids.Set) {
		store := challenge.NewRedisStore(c, challenge.RedisOptions{})
		if err := store.Init(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		ids := policyids.New(func() string { return policyID.Load().(string) }, nil, policyids.NewFleet(c, store.Prefix(), time.Second))
		svc, err := New(Options{Tokens: f.tokens, Used: store, Resources: f.store, Policies: ids})
		if err != nil {
			t.Fatal(err)
		}
		return svc, ids
	}
	var polA, polB atomic.Value
	polA.Store("sha256:at-a")
	polB.Store("sha256:at-b")
	a, idsA := replica(rdbA, &polA)
	b, _ := replica(rdbB, &polB)

	tok := f.issue(t, idsA.ID())
	if _, err := b.Release(ctx, tok, []string{"s"}); err != nil {
		t.Fatalf("a token of replica A's policy at replica B: %v", err)
	}
	if _, err := a.Release(ctx, tok, []string{"s"}); attest.ReasonOf(err) != attest.ReasonTokenReplayed {
		t.Fatalf("the same token at A: %v, want token_replayed", err)
	}

	// A's policy changes; its first token under the new one releases at
	// B at once (no probe in between).
	polA.Store("sha256:at-a-2")
	if _, err := b.Release(ctx, f.issue(t, idsA.ID()), []string{"s"}); err != nil {
		t.Fatalf("a token of A's new policy at B: %v", err)
	}

	unknown := f.issue(t, "sha256:never")
	for _, svc := range []*Service{a, b} {
		if _, err := svc.Release(ctx, unknown, []string{"s"}); attest.ReasonOf(err) != attest.ReasonTokenInvalid {
			t.Fatalf("unknown policy id: %v, want token_invalid", err)
		}
	}
	if n, err := rdbA.Exists(ctx, challenge.DefaultRedisPrefix+"jti:"+mustJTI(t, f, unknown)).Result(); err != nil || n != 0 {
		t.Fatalf("a refused token was recorded as used (%d, %v)", n, err)
	}

	fleet := policyids.NewFleet(rdbA, challenge.DefaultRedisPrefix, time.Second)
	if err := fleet.Record(ctx, "sha256:long-ago", time.Now().Add(-2*time.Hour)); err != nil {
		t.Fatal(err)
	}
	if _, err := b.Release(ctx, f.issue(t, "sha256:long-ago"), []string{"s"}); attest.ReasonOf(err) != attest.ReasonTokenInvalid {
		t.Fatalf("a policy last in force two hours before the token: %v, want token_invalid", err)
	}
}

func mustJTI(t *testing.T, f policyFixture, tok string) string {
	t.Helper()
	ear, err := f.tokens.Verify(tok)
	if err != nil {
		t.Fatal(err)
	}
	return ear.ID
}
