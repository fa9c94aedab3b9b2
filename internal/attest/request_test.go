package attest_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
)

func TestRequestValues(t *testing.T) {
	t.Parallel()
	bg := context.Background()
	if attest.ClientOf(bg) != "" || attest.WithClient(bg, "") != bg {
		t.Fatal("no client: want \"\" and ctx unchanged")
	}
	if _, ok := attest.NonceOf(bg); ok {
		t.Fatal("a nonce in the background context")
	}
	var n attest.Nonce
	n[3] = 9
	ctx := attest.WithNonce(attest.WithClient(bg, "ip:192.0.2.1"), n)
	if got, ok := attest.NonceOf(ctx); !ok || got != n || attest.ClientOf(ctx) != "ip:192.0.2.1" {
		t.Fatalf("NonceOf %v %t, ClientOf %q", got[:4], ok, attest.ClientOf(ctx))
	}

	// One request's waits share one deadline; without WithClient each
	// wait gets its own.
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	if u := attest.WaitUntil(ctx, t0, 10*time.Second); !u.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("first wait until %s", u)
	}
	if u := attest.WaitUntil(ctx, t0.Add(8*time.Second), 10*time.Second); !u.Equal(t0.Add(10 * time.Second)) {
		t.Fatalf("second wait of the request until %s, want the first's", u)
	}
	if u := attest.WaitUntil(bg, t0.Add(8*time.Second), 10*time.Second); !u.Equal(t0.Add(18 * time.Second)) {
		t.Fatalf("wait without a request until %s", u)
	}
}

type hint struct{ d time.Duration }

func (h hint) Error() string             { return "later" }
func (h hint) RetryAfter() time.Duration { return h.d }

func TestRetryAfter(t *testing.T) {
	t.Parallel()
	err := &attest.Error{Reason: attest.ReasonVCEKUnavailable, Err: fmt.Errorf("KDS: %w", hint{7 * time.Second})}
	if d, ok := attest.RetryAfter(err); !ok || d != 7*time.Second {
		t.Fatalf("RetryAfter = %s, %t", d, ok)
	}
	if _, ok := attest.RetryAfter(errors.New("no hint")); ok {
		t.Fatal("a hint where there is none")
	}
}
