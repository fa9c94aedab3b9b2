package tiered

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Refusals of Flights.Do. The services turn each into their unavailable
// reason (vcek_unavailable, collateral_unavailable).
var (
	// ErrBusy fails a lookup that would start one fetch too many.
	ErrBusy = errors.New("too many fetches in flight; retry later")
	// ErrTooManyWaiting fails a lookup beyond the bound on waiting callers.
	ErrTooManyWaiting = errors.New("too many requests waiting for fetches; retry later")
	// ErrClientBusy fails a lookup of a client that already started as
	// many fetches as it may have running.
	ErrClientBusy = errors.New("a fetch started by this client is still running; retry later")
	// ErrClientWaiting fails a lookup of a client that already has as
	// many requests waiting as it may.
	ErrClientWaiting = errors.New("too many requests of this client wait for fetches; retry later")
	// ErrStillRunning fails a lookup that waited as long as it may; the
	// fetch goes on.
	ErrStillRunning = errors.New("the fetch did not end in time; it goes on in the background, retry later")
)

// Flights runs at most one fetch per key at a time: callers that ask for
// a key already in flight wait for that fetch's result instead of making
// their own request. The fetch runs on its own context (detached from
// every caller's: Background.FetchContext), so that callers giving up or
// waiting no longer (Join's Until) do not end it: it goes on
// in the background and a retry finds its result cached.
//
// Evidence names what to fetch (a chip, an FMSPC) before anything about it
// is verified, so made-up names must not pile up fetches or waiting
// callers. The bounds (0: none), set before the first Do:
//   - Max fetches run at once; when a new one is needed and max are
//     running, the oldest one nobody waits for any more is cancelled to
//     make room, and if every one has waiters the caller is refused;
//   - MaxWaiting callers wait at once, all keys together;
//   - PerClient fetches started by one client (Join's Client; "" is not
//     bounded) run at once, and ClientWaiting of its callers wait at
//     once, so that one client cannot take the places of others.
//
// The zero value is ready to use.
type Flights[K comparable, V any] struct {
	Max, MaxWaiting, PerClient, ClientWaiting int

	mu       sync.Mutex
	m        map[K]*flight[V]
	seq      uint64
	waiting  int
	started  map[string]int // client → fetches it started that still run
	clientWt map[string]int // client → its callers waiting
}

type flight[V any] struct {
	done    chan struct{}
	val     V
	err     error
	waiters int
	seq     uint64
	cancel  context.CancelFunc
}

// Join says who waits for a fetch and until when.
type Join struct {
	// Client is the caller's identity (attest.ClientOf); "" is unbounded.
	Client string
	// Until ends the wait with ErrStillRunning; zero means no bound.
	Until time.Time
}

// Do returns the result of fn for key, calling fn (in a goroutine, on the
// context start returns) only if no call for key is in flight.
func (f *Flights[K, V]) Do(ctx context.Context, key K, j Join, start func() (context.Context, context.CancelFunc), fn func(context.Context) (V, error)) (v V, err error) {
	f.mu.Lock()
	if f.m == nil {
		f.m, f.started, f.clientWt = make(map[K]*flight[V]), make(map[string]int), make(map[string]int)
	}
	if f.MaxWaiting > 0 && f.waiting >= f.MaxWaiting {
		f.mu.Unlock()
		return v, ErrTooManyWaiting
	}
	if j.Client != "" && f.ClientWaiting > 0 && f.clientWt[j.Client] >= f.ClientWaiting {
		f.mu.Unlock()
		return v, ErrClientWaiting
	}
	fl, shared := f.m[key]
	if !shared {
		if j.Client != "" && f.PerClient > 0 && f.started[j.Client] >= f.PerClient {
			f.mu.Unlock()
			return v, ErrClientBusy
		}
		if f.Max > 0 && len(f.m) >= f.Max && !f.evictAbandoned() {
			f.mu.Unlock()
			return v, ErrBusy
		}
		fctx, release := start()
		fctx, abandon := context.WithCancel(fctx)
		f.seq++
		fl = &flight[V]{done: make(chan struct{}), cancel: abandon, seq: f.seq}
		f.m[key] = fl
		f.started[j.Client]++
		go func() {
			val, err := fn(fctx)
			abandon()
			release()
			f.mu.Lock()
			fl.val, fl.err = val, err
			if f.m[key] == fl {
				delete(f.m, key)
			}
			if f.started[j.Client]--; f.started[j.Client] <= 0 {
				delete(f.started, j.Client)
			}
			f.mu.Unlock()
			close(fl.done)
		}()
	}
	fl.waiters++
	f.waiting++
	f.clientWt[j.Client]++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		fl.waiters--
		f.waiting--
		if f.clientWt[j.Client]--; f.clientWt[j.Client] <= 0 {
			delete(f.clientWt, j.Client)
		}
		f.mu.Unlock()
	}()

	var timeout <-chan time.Time
	if !j.Until.IsZero() {
		t := time.NewTimer(time.Until(j.Until))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-fl.done:
		return fl.val, fl.err
	case <-ctx.Done():
		return v, ctx.Err()
	case <-timeout:
		select {
		case <-fl.done: // ended just now after all
			return fl.val, fl.err
		default:
		}
		return v, ErrStillRunning
	}
}

// evictAbandoned cancels the oldest fetch nobody waits for and forgets
// it, so that a new fetch can take its place; false if every fetch has
// waiters. f.mu is held.
func (f *Flights[K, V]) evictAbandoned() bool {
	var (
		oldest *flight[V]
		okey   K
	)
	for k, fl := range f.m {
		if fl.waiters == 0 && (oldest == nil || fl.seq < oldest.seq) {
			oldest, okey = fl, k
		}
	}
	if oldest == nil {
		return false
	}
	oldest.cancel()
	delete(f.m, okey)
	return true
}

// Running returns how many fetches are in flight.
func (f *Flights[K, V]) Running() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m)
}

// Waiting returns how many callers wait for fetches.
func (f *Flights[K, V]) Waiting() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.waiting
}
