package challenge

import (
	"context"
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/testkit"
)

func newIssuer(t *testing.T, key []byte, c *testkit.Clock) *Issuer {
	t.Helper()
	i, err := New(Options{Key: key, Store: NewMemoryStore(c.Now), Now: c.Now})
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func TestNonceLifecycle(t *testing.T) {
	t.Parallel()
	c := testkit.NewClock(time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC))
	key := GenerateKey()
	i := newIssuer(t, key, c)
	other := newIssuer(t, GenerateKey(), c)
	ctx := context.Background()

	n, exp := i.Issue()
	if want := c.Now().Add(DefaultTTL); !exp.Equal(want) {
		t.Fatalf("expiry %v, want %v", exp, want)
	}
	n2, _ := i.Issue()
	if n == n2 {
		t.Fatal("two nonces are equal")
	}
	tampered := n
	tampered[10] ^= 1
	longer := n
	longer[1] ^= 0x80 // push the expiry far out: the MAC must catch it

	cases := []struct {
		name string
		err  error
		want attest.Reason
	}{
		{"other verifier's key", other.Consume(ctx, n), attest.ReasonNonceInvalid},
		{"tampered random part", i.Consume(ctx, tampered), attest.ReasonNonceInvalid},
		{"tampered expiry", i.Consume(ctx, longer), attest.ReasonNonceInvalid},
		{"zero nonce", i.Consume(ctx, attest.Nonce{}), attest.ReasonNonceInvalid},
		{"first use", i.Consume(ctx, n), ""},
		{"second use", i.Consume(ctx, n), attest.ReasonNonceReplayed},
	}
	for _, tc := range cases {
		if got := attest.ReasonOf(tc.err); got != tc.want {
			t.Errorf("%s: reason %q (%v), want %q", tc.name, got, tc.err, tc.want)
		}
	}

	// A restarted verifier with the same key accepts the other nonce.
	restarted := newIssuer(t, key, c)
	if err := restarted.Check(n2); err != nil {
		t.Fatalf("same key after restart: %v", err)
	}
	c.Add(DefaultTTL)
	if got := attest.ReasonOf(i.Consume(ctx, n2)); got != attest.ReasonNonceExpired {
		t.Fatalf("after TTL: %q, want nonce_expired", got)
	}
}

// Of many concurrent consumers of one nonce exactly one wins.
func TestConsumeAtomic(t *testing.T) {
	t.Parallel()
	c := testkit.NewClock(time.Now())
	i := newIssuer(t, GenerateKey(), c)
	n, _ := i.Issue()
	var ok, replayed atomic.Int32
	var wg sync.WaitGroup
	for range 64 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			switch attest.ReasonOf(i.Consume(context.Background(), n)) {
			case "":
				ok.Add(1)
			case attest.ReasonNonceReplayed:
				replayed.Add(1)
			}
		}()
	}
	wg.Wait()
	if ok.Load() != 1 || replayed.Load() != 63 {
		t.Fatalf("%d accepted, %d replayed; want 1 and 63", ok.Load(), replayed.Load())
	}
}

type brokenStore struct{}

func (brokenStore) Consume(context.Context, string, time.Time) (bool, error) {
	return false, errors.New("connection refused")
}

func TestStoreUnavailable(t *testing.T) {
	t.Parallel()
	i, err := New(Options{Key: GenerateKey(), Store: brokenStore{}})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := i.Issue()
	if got := attest.ReasonOf(i.Consume(context.Background(), n)); got != attest.ReasonStoreUnavailable {
		t.Fatalf("reason %q, want store_unavailable", got)
	}
}

func TestMemoryStoreDropsExpired(t *testing.T) {
	t.Parallel()
	c := testkit.NewClock(time.Now())
	m := NewMemoryStore(c.Now)
	for i := range 100 {
		m.Consume(context.Background(), string(rune(i)), c.Now().Add(time.Second))
	}
	c.Add(time.Minute)
	m.Consume(context.Background(), "new", c.Now().Add(time.Second))
	if m.Len() != 1 {
		t.Fatalf("store holds %d records after expiry, want 1", m.Len())
	}
}

func TestNewRejectsWeakKey(t *testing.T) {
	t.Parallel()
	if _, err := New(Options{Key: make([]byte, 16), Store: NewMemoryStore(nil)}); err == nil {
		t.Fatal("16-byte key accepted")
	}
}
