package certs

import (
	"context"
	"errors"
	"sync"
	"time"
)

// Refusals of flights.do. Each is a vcek_unavailable to the caller.
var (
	// errBusy fails a lookup that would start one fetch too many.
	errBusy = errors.New("too many certificate fetches in flight; retry later")
	// errTooManyWaiting fails a lookup beyond the bound on waiting callers.
	errTooManyWaiting = errors.New("too many requests waiting for certificate fetches; retry later")
	// errClientBusy fails a lookup of a client that already started as
	// many fetches as it may have running.
	errClientBusy = errors.New("a certificate fetch started by this client is still running; retry later")
	// errClientWaiting fails a lookup of a client that already has as
	// many requests waiting as it may.
	errClientWaiting = errors.New("too many requests of this client wait for certificate fetches; retry later")
	// errStillRunning fails a lookup that waited as long as it may; the
	// fetch goes on.
	errStillRunning = errors.New("the certificate fetch did not end in time; it goes on in the background, retry later")
)

// flights runs at most one fetch per key at a time: callers that ask for
// a key already in flight wait for that fetch's result instead of making
// their own request. The fetch runs on its own context (detached from
// every caller's, bounded by the Service's fetch timeout), so that callers
// giving up or waiting no longer (join's until) do not end it: it goes on
// in the background and a retry finds its result cached.
//
// Evidence names the chip to fetch for before anything about it is
// verified, so made-up chip ids must not pile up fetches or waiting
// callers. The bounds (0: none):
//   - max fetches run at once; when a new one is needed and max are
//     running, the oldest one nobody waits for any more is cancelled to
//     make room, and if every one has waiters the caller is refused;
//   - maxWaiting callers wait at once, all keys together;
//   - perClient fetches started by one client (join's client; "" is not
//     bounded) run at once, and clientWaiting of its callers wait at
//     once, so that one client cannot take the places of others.
type flights[K comparable, V any] struct {
	max, maxWaiting, perClient, clientWaiting int

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

// join says who waits for a fetch and until when.
type join struct {
	// client is the caller's identity (attest.ClientOf); "" is unbounded.
	client string
	// until ends the wait with errStillRunning; zero means no bound.
	until time.Time
}

// do returns the result of fn for key, calling fn (in a goroutine, on the
// context start returns) only if no call for key is in flight.
func (f *flights[K, V]) do(ctx context.Context, key K, j join, start func() (context.Context, context.CancelFunc), fn func(context.Context) (V, error)) (v V, err error) {
	f.mu.Lock()
	if f.m == nil {
		f.m, f.started, f.clientWt = make(map[K]*flight[V]), make(map[string]int), make(map[string]int)
	}
	if f.maxWaiting > 0 && f.waiting >= f.maxWaiting {
		f.mu.Unlock()
		return v, errTooManyWaiting
	}
	if j.client != "" && f.clientWaiting > 0 && f.clientWt[j.client] >= f.clientWaiting {
		f.mu.Unlock()
		return v, errClientWaiting
	}
	fl, shared := f.m[key]
	if !shared {
		if j.client != "" && f.perClient > 0 && f.started[j.client] >= f.perClient {
			f.mu.Unlock()
			return v, errClientBusy
		}
		if f.max > 0 && len(f.m) >= f.max && !f.evictAbandoned() {
			f.mu.Unlock()
			return v, errBusy
		}
		fctx, release := start()
		fctx, abandon := context.WithCancel(fctx)
		f.seq++
		fl = &flight[V]{done: make(chan struct{}), cancel: abandon, seq: f.seq}
		f.m[key] = fl
		f.started[j.client]++
		go func() {
			val, err := fn(fctx)
			abandon()
			release()
			f.mu.Lock()
			fl.val, fl.err = val, err
			if f.m[key] == fl {
				delete(f.m, key)
			}
			if f.started[j.client]--; f.started[j.client] <= 0 {
				delete(f.started, j.client)
			}
			f.mu.Unlock()
			close(fl.done)
		}()
	}
	fl.waiters++
	f.waiting++
	f.clientWt[j.client]++
	f.mu.Unlock()
	defer func() {
		f.mu.Lock()
		fl.waiters--
		f.waiting--
		if f.clientWt[j.client]--; f.clientWt[j.client] <= 0 {
			delete(f.clientWt, j.client)
		}
		f.mu.Unlock()
	}()

	var timeout <-chan time.Time
	if !j.until.IsZero() {
		t := time.NewTimer(time.Until(j.until))
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
		return v, errStillRunning
	}
}

// evictAbandoned cancels the oldest fetch nobody waits for and forgets
// it, so that a new fetch can take its place; false if every fetch has
// waiters. f.mu is held.
func (f *flights[K, V]) evictAbandoned() bool {
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

// running returns how many fetches are in flight.
func (f *flights[K, V]) running() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return len(f.m)
}
