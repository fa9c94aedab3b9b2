package tiered

import (
	"context"
	"sync"
	"sync/atomic"
	"time"
)

// Freshness is where a cached record stands in its lifetime.
type Freshness int

const (
	Fresh   Freshness = iota // before its refresh point: served as it is
	Stale                    // past it: served while a refresh runs
	Expired                  // past UsableTill: not served
)

// Lifetime is the freshness of one cached record: fetched at FetchedAt,
// valid until a time U (a certificate's notAfter, a CRL's or a document's
// nextUpdate), Fresh until RefreshAt, then Stale until UsableTill, then
// Expired.
type Lifetime struct {
	FetchedAt  time.Time
	RefreshAt  time.Time
	UsableTill time.Time
	nextTry    atomic.Int64 // UnixNano before which no background refresh starts
}

// Set sets l for a record fetched at fetched (not later than now) and
// valid until until: RefreshAt is fetched + frac*(until-fetched), at the
// latest fetched + maxAge when maxAge > 0, and UsableTill what
// usable(RefreshAt) says.
func (l *Lifetime) Set(fetched, now, until time.Time, frac float64, maxAge time.Duration, usable func(refreshAt time.Time) time.Time) {
	if fetched.After(now) {
		fetched = now
	}
	l.FetchedAt = fetched
	l.RefreshAt = until
	if until.After(fetched) {
		l.RefreshAt = fetched.Add(time.Duration(frac * float64(until.Sub(fetched))))
	}
	if maxAge > 0 && l.RefreshAt.After(fetched.Add(maxAge)) {
		l.RefreshAt = fetched.Add(maxAge)
	}
	l.UsableTill = usable(l.RefreshAt)
}

// StaleFor is the usable function of a record served at most maxStale
// past its refresh point (none when maxStale <= 0) and never after until.
func StaleFor(maxStale time.Duration, until time.Time) func(refreshAt time.Time) time.Time {
	return func(refreshAt time.Time) time.Time {
		till := refreshAt
		if maxStale > 0 {
			till = refreshAt.Add(maxStale)
		}
		if till.After(until) {
			till = until
		}
		return till
	}
}

// State is l's freshness at now.
func (l *Lifetime) State(now time.Time) Freshness {
	switch {
	case now.After(l.UsableTill):
		return Expired
	case now.Before(l.RefreshAt):
		return Fresh
	}
	return Stale
}

// Background runs a service's fetches and refreshes: on a context of its
// own that Close ends, each fetch bounded by a timeout, and Close waits
// for all of them. Create it with NewBackground.
type Background struct {
	ctx     context.Context
	cancel  context.CancelFunc
	fetchTO time.Duration
	wg      sync.WaitGroup
	mu      sync.Mutex
	closed  bool
}

// NewBackground returns a Background whose fetches end after fetchTimeout.
func NewBackground(fetchTimeout time.Duration) *Background {
	b := &Background{fetchTO: fetchTimeout}
	b.ctx, b.cancel = context.WithCancel(context.Background())
	return b
}

// Close stops background refreshes and fetches in flight and waits for
// them to end.
func (b *Background) Close() {
	b.mu.Lock()
	b.closed = true
	b.mu.Unlock()
	b.cancel()
	b.wg.Wait()
}

// Context is the context of work that ends only with Close.
func (b *Background) Context() context.Context { return b.ctx }

// track counts a goroutine that Close waits for; false once closed.
func (b *Background) track() bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.closed {
		return false
	}
	b.wg.Add(1)
	return true
}

// FetchContext is the context a coalesced fetch runs on (Flights.Do's
// start): detached from every caller, ended by Close or the fetch
// timeout. Once closed, it is already ended.
func (b *Background) FetchContext() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithTimeout(b.ctx, b.fetchTO)
	if !b.track() {
		cancel()
		return ctx, cancel
	}
	return ctx, func() { cancel(); b.wg.Done() }
}

// RefreshLater runs refresh in the background on Context, at most once a
// minute per lifetime, and not once closed.
func (b *Background) RefreshLater(l *Lifetime, now time.Time, refresh func(ctx context.Context)) {
	next := l.nextTry.Load()
	if now.UnixNano() < next || !l.nextTry.CompareAndSwap(next, now.Add(time.Minute).UnixNano()) {
		return
	}
	if !b.track() {
		return
	}
	go func() {
		defer b.wg.Done()
		refresh(b.ctx)
	}()
}
