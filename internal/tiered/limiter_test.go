package tiered

import (
	"context"
	"sync"
	"testing"
	"time"
)

// The limiter decides send times; measuring them where it decides them
// (its reservations on a fixed clock) is exact, whereas arrival times at a
// server also measure how busy the machine is.
func TestLimiterHandsOutSendTimesInOrder(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 12, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := t0
	clock := func() time.Time { mu.Lock(); defer mu.Unlock(); return now }
	set := func(t time.Time) { mu.Lock(); now = t; mu.Unlock() }
	const every = 10 * time.Second
	l := NewLimiter(every, 1, clock, nil)
	ctx := context.Background()
	reserve := func() time.Duration {
		t.Helper()
		d, _, err := l.reserve(ctx)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}

	// Five fetches asking at the same instant are given t0, t0+10s, ...:
	// one per interval, first come first served.
	for i := range 5 {
		if d := reserve(); d != time.Duration(i)*every {
			t.Fatalf("reservation %d: send in %s, want %s", i, d, time.Duration(i)*every)
		}
	}
	// A later one queues behind them, whenever it comes.
	set(t0.Add(3 * time.Second))
	if d := reserve(); d != 50*time.Second-3*time.Second {
		t.Fatalf("sixth reservation: send in %s, want 47s", d)
	}

	// A Retry-After of 2 minutes: nothing before it, then one per interval,
	// and the waiters reserved before it must queue again.
	_, gen, _ := l.reserve(ctx)
	l.DeferUntil(t0.Add(3*time.Second + 2*time.Minute))
	if l.gen == gen {
		t.Fatal("a deferral did not invalidate earlier reservations")
	}
	if d := reserve(); d != 2*time.Minute {
		t.Fatalf("after Retry-After 120: send in %s, want 2m", d)
	}
	if d := reserve(); d != 2*time.Minute+every {
		t.Fatalf("second after Retry-After: send in %s, want 2m10s", d)
	}
	if h := l.HeldBack(); h != 2*time.Minute {
		t.Fatalf("heldBack %s, want 2m", h)
	}

	// A send time after the caller's deadline fails at once, reserves
	// nothing, and says how long until the limiter would allow it.
	short, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	before := l.tokens
	_, _, err := l.reserve(short)
	e, ok := err.(errAfterDeadline)
	if !ok || e.RetryAfter() != 2*time.Minute+2*every {
		t.Fatalf("reserve past the deadline: %v, want errAfterDeadline of 2m20s", err)
	}
	if l.tokens != before {
		t.Fatal("a refused reservation took a token")
	}
}

// Without a rate, only a Retry-After holds requests back.
func TestLimiterUnlimited(t *testing.T) {
	t.Parallel()
	t0 := time.Now()
	l := NewLimiter(-1, 1, func() time.Time { return t0 }, nil)
	for range 3 {
		if d, _, _ := l.reserve(context.Background()); d != 0 {
			t.Fatalf("unlimited: send in %s", d)
		}
	}
	l.DeferUntil(t0.Add(time.Second))
	if d, _, _ := l.reserve(context.Background()); d != time.Second {
		t.Fatalf("unlimited after Retry-After 1: send in %s", d)
	}
}
