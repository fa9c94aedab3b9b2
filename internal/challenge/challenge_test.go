package challenge

import (
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/binary"
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

func (brokenStore) Consume(context.Context, string, time.Time, time.Time) (bool, error) {
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
		m.Consume(context.Background(), string(rune(i)), c.Now(), c.Now().Add(time.Second))
	}
	c.Add(time.Minute)
	m.Consume(context.Background(), "new", c.Now(), c.Now().Add(time.Second))
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

// A nonce of the old layout (version 1: expiry, no issue time) is not
// accepted even under the right key: nothing could tell whether a store
// that lost its records had seen it. It is store_unavailable, so that the
// agent retries with a new challenge; under another key, nonce_invalid.
func TestVersion1NonceRefused(t *testing.T) {
	t.Parallel()
	c := testkit.NewClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	i := newIssuer(t, GenerateKey(), c)
	var v1 attest.Nonce
	v1[0] = 1
	binary.BigEndian.PutUint64(v1[1:9], uint64(c.Now().Add(time.Minute).UnixMilli()))
	copy(v1[32:], i.mac(v1[:32]))
	if got := attest.ReasonOf(i.Consume(context.Background(), v1)); got != attest.ReasonStoreUnavailable {
		t.Fatalf("version 1 nonce: reason %q, want store_unavailable", got)
	}
	v1[40] ^= 1
	if got := attest.ReasonOf(i.Consume(context.Background(), v1)); got != attest.ReasonNonceInvalid {
		t.Fatalf("version 1 nonce, bad MAC: reason %q, want nonce_invalid", got)
	}
	n, exp := i.Issue()
	if n[0] != 2 || !issued(n).Equal(c.Now()) || !expiry(n).Equal(exp) {
		t.Fatalf("nonce version %d, issued %v, expiry %v; want 2, %v, %v", n[0], issued(n), expiry(n), c.Now(), exp)
	}
}

// A verifier restarted with the same nonce key and the memory store
// refuses every nonce issued before its start (store_unavailable), the
// consumed one included, instead of accepting it once more; nonces it
// issues itself are single-use as before.
func TestMemoryStoreRefusesNoncesOfAnEarlierProcess(t *testing.T) {
	t.Parallel()
	c := testkit.NewClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	key := GenerateKey()
	ctx := context.Background()
	before := newIssuer(t, key, c)
	used, unused := mustIssue(before), mustIssue(before)
	if err := before.Consume(ctx, used); err != nil {
		t.Fatal(err)
	}
	c.Add(3 * time.Second)
	after := newIssuer(t, key, c) // the restarted process
	fresh := mustIssue(after)
	cases := []struct {
		name string
		n    attest.Nonce
		want attest.Reason
	}{
		{"consumed before the restart", used, attest.ReasonStoreUnavailable},
		{"issued before the restart, unused", unused, attest.ReasonStoreUnavailable},
		{"issued after", fresh, ""},
		{"issued after, again", fresh, attest.ReasonNonceReplayed},
	}
	for _, tc := range cases {
		err := after.Consume(ctx, tc.n)
		if got := attest.ReasonOf(err); got != tc.want {
			t.Errorf("%s: reason %q (%v), want %q", tc.name, got, err, tc.want)
		}
		if tc.want == attest.ReasonStoreUnavailable && !errors.Is(err, ErrIssuedBeforeRecords) {
			t.Errorf("%s: %v does not wrap ErrIssuedBeforeRecords", tc.name, err)
		}
	}
}

func mustIssue(i *Issuer) attest.Nonce {
	n, _ := i.Issue()
	return n
}

// The MAC is HMAC-SHA256 under the issuer's key however its states are
// reused, also from many goroutines at once; a nonce under another key is
// nonce_invalid.
func TestMACReusedStates(t *testing.T) {
	t.Parallel()
	key := GenerateKey()
	c := testkit.NewClock(time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC))
	i, other := newIssuer(t, key, c), newIssuer(t, GenerateKey(), c)
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for k := range 50 {
				msg := []byte{byte(g), byte(k), 1, 2, 3}
				ref := hmac.New(sha256.New, key)
				ref.Write(msg)
				if got := i.mac(msg); !hmac.Equal(got, ref.Sum(nil)) {
					t.Errorf("mac %x, want %x", got, ref.Sum(nil))
					return
				}
				n, _ := i.Issue()
				if err := i.Check(n); err != nil {
					t.Errorf("own nonce: %v", err)
					return
				}
				if got := attest.ReasonOf(other.Check(n)); got != attest.ReasonNonceInvalid {
					t.Errorf("another key's nonce: %q", got)
					return
				}
			}
		})
	}
	wg.Wait()
}

// Without a shared store a nonce names its replica and only that replica
// accepts it (issue 21, item 11): another with the same key answers
// store_unavailable, as for a nonce issued before its records begin.
func TestNonceNamesItsReplica(t *testing.T) {
	t.Parallel()
	key := GenerateKey()
	a, err := New(Options{Key: key, Store: NewMemoryStore(nil), Replica: NewReplicaID()})
	if err != nil {
		t.Fatal(err)
	}
	b, err := New(Options{Key: key, Store: NewMemoryStore(nil), Replica: NewReplicaID()})
	if err != nil {
		t.Fatal(err)
	}
	n, _ := a.Issue()
	if err := b.Check(n); attest.ReasonOf(err) != attest.ReasonStoreUnavailable {
		t.Fatalf("another replica's nonce: %v", err)
	}
	if err := a.Consume(context.Background(), n); err != nil {
		t.Fatalf("the issuing replica: %v", err)
	}
	if _, err := New(Options{Key: key, Store: NewMemoryStore(nil), Replica: []byte{1}}); err == nil {
		t.Error("a 1-byte replica id was accepted")
	}
}
