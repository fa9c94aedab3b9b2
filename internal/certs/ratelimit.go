package certs

import (
	"context"
	"fmt"
	"sync"
	"time"
)

// limiter is a token bucket: one token every `every`, at most burst
// tokens saved up, and no token at all before notBefore (set when the KDS
// answers 429 or 503 with Retry-After). It waits with the Service's
// clock and sleep so that tests can drive it without real time.
type limiter struct {
	every time.Duration // <= 0: unlimited
	burst int
	now   func() time.Time
	sleep func(context.Context, time.Duration) error

	mu        sync.Mutex
	tokens    float64
	last      time.Time
	notBefore time.Time
}

func newLimiter(every time.Duration, burst int, now func() time.Time, sleep func(context.Context, time.Duration) error) *limiter {
	return &limiter{every: every, burst: burst, now: now, sleep: sleep, tokens: float64(burst)}
}

// wait blocks until a request may be sent, or ctx ends. A wait that would
// outlast ctx's deadline fails at once.
func (l *limiter) wait(ctx context.Context) error {
	for {
		d := l.reserve()
		if d <= 0 {
			return nil
		}
		if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
			return fmt.Errorf("the rate limit allows the next request in %s, after this fetch's deadline", d.Round(time.Millisecond))
		}
		if err := l.sleep(ctx, d); err != nil {
			return err
		}
	}
}

// reserve takes a token and returns 0, or returns how long to wait before
// trying again.
func (l *limiter) reserve() time.Duration {
	l.mu.Lock()
	defer l.mu.Unlock()
	now := l.now()
	if now.Before(l.notBefore) {
		return l.notBefore.Sub(now)
	}
	if l.every <= 0 {
		return 0
	}
	if !l.last.IsZero() && now.After(l.last) {
		l.tokens += float64(now.Sub(l.last)) / float64(l.every)
		if l.tokens > float64(l.burst) {
			l.tokens = float64(l.burst)
		}
	}
	if l.last.IsZero() || now.After(l.last) {
		l.last = now
	}
	if l.tokens >= 1 {
		l.tokens--
		return 0
	}
	d := time.Duration((1 - l.tokens) * float64(l.every))
	if d <= 0 {
		d = time.Nanosecond
	}
	return d
}

// deferUntil holds every request back until t and leaves no saved-up
// burst behind it: after a 429 the KDS gets one request at t, then one per
// interval.
func (l *limiter) deferUntil(t time.Time) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if !t.After(l.notBefore) {
		return
	}
	l.notBefore = t
	l.tokens = min(1, float64(l.burst))
	l.last = t
}

// sleepTimer is the default Sleep: a real timer that ctx can cut short.
func sleepTimer(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}
