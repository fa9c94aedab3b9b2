package tiered

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// Limiter is a token bucket that hands out send times in order: one token
// every `every`, at most burst saved up, and no send time before
// notBefore (set when the origin answers 429 or 503 with Retry-After). A
// caller reserves the next free send time and sleeps until it, so callers
// are served first come, first served: a fetch waits behind the fetches
// that reserved before it and never behind one that comes later (a
// client flooding the service with fetches does not overtake another
// client's). It waits with the Service's clock and sleep so that tests
// can drive it without real time.
type Limiter struct {
	every time.Duration // <= 0: unlimited
	burst int
	now   func() time.Time
	sleep func(context.Context, time.Duration) error

	mu        sync.Mutex
	tokens    float64 // at last; negative: send times reserved ahead
	last      time.Time
	notBefore time.Time
	gen       uint64 // counts DeferUntil calls that moved notBefore
}

// NewLimiter returns a Limiter of one send time per every (<= 0: no
// limit) and burst saved up, on the clock now, waiting with sleep.
func NewLimiter(every time.Duration, burst int, now func() time.Time, sleep func(context.Context, time.Duration) error) *Limiter {
	return &Limiter{every: every, burst: burst, now: now, sleep: sleep, tokens: float64(burst)}
}

// Wait blocks until a request may be sent, or ctx ends. A wait that would
// outlast ctx's deadline fails at once and reserves nothing. A Retry-After
// that arrives while it waits sends it to the back of the queue behind
// the new notBefore.
func (l *Limiter) Wait(ctx context.Context) error {
	for {
		d, gen, err := l.reserve(ctx)
		if err != nil || d <= 0 {
			return err
		}
		if err := l.sleep(ctx, d); err != nil {
			return err
		}
		l.mu.Lock()
		held := gen != l.gen
		l.mu.Unlock()
		if !held {
			return nil
		}
	}
}

// errAfterDeadline is a rate-limit wait longer than the fetch may take.
type errAfterDeadline struct{ d time.Duration }

func (e errAfterDeadline) Error() string {
	return fmt.Sprintf("the rate limit allows the next request in %s, after this fetch's deadline", e.d.Round(time.Millisecond))
}

// RetryAfter is how long until the rate limit would let a request go.
func (e errAfterDeadline) RetryAfter() time.Duration { return e.d }

// reserve takes the next send time and returns how long until it, with
// the deferral generation it was taken under; or, taking nothing, an
// error when that time lies after ctx's deadline.
func (l *Limiter) reserve(ctx context.Context) (time.Duration, uint64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	at := l.next(now)
	d := at.Sub(now)
	if dl, ok := ctx.Deadline(); ok && d > 0 && time.Until(dl) < d {
		return 0, 0, errAfterDeadline{d}
	}
	if l.every > 0 {
		l.advance(at)
		l.tokens--
	}
	return d, l.gen, nil
}

// next is the send time a reservation made at now would get; l.mu is
// held.
func (l *Limiter) next(now time.Time) time.Time {
	t := now
	if t.Before(l.notBefore) {
		t = l.notBefore
	}
	if l.every <= 0 {
		return t
	}
	if t.Before(l.last) {
		t = l.last // send times are reserved up to last
	}
	tok := l.tokensAt(t)
	if tok >= 1 {
		return t
	}
	return t.Add(time.Duration((1 - tok) * float64(l.every)))
}

// tokensAt is the bucket's content at t (not before last); l.mu is held.
func (l *Limiter) tokensAt(t time.Time) float64 {
	tok := l.tokens
	if t.After(l.last) && !l.last.IsZero() {
		tok += float64(t.Sub(l.last)) / float64(l.every)
	}
	return min(tok, float64(l.burst))
}

// advance moves the bucket to t if t is later than last; l.mu is held.
func (l *Limiter) advance(t time.Time) {
	if l.last.IsZero() || t.After(l.last) {
		l.tokens = l.tokensAt(t)
		l.last = t
	}
}

// untilNext is how long from now a request would wait for its turn.
func (l *Limiter) untilNext() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	return max(l.next(now).Sub(now), 0)
}

// HeldBack returns how long from now every request is held back by a
// Retry-After (0 if none).
func (l *Limiter) HeldBack() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	return max(l.notBefore.Sub(l.now()), 0)
}

// DeferUntil holds every request back until t and leaves no saved-up
// burst behind it: after a 429 the origin gets one request at t, then one per
// interval. Requests already waiting queue again behind t.
func (l *Limiter) DeferUntil(t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !t.After(l.notBefore) {
		return
	}
	l.notBefore = t
	l.tokens = min(1, float64(l.burst))
	l.last = t
	l.gen++
}
