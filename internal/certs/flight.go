package certs

import (
	"context"
	"errors"
	"sync"
)

// errBusy fails a lookup that would start one fetch too many.
var errBusy = errors.New("too many certificate fetches in flight; retry later")

// flights runs at most one fetch per key at a time: callers that ask for
// a key already in flight wait for that fetch's result instead of making
// their own request. The fetch runs on its own context (detached from
// every caller's, bounded by the Service's fetch timeout) so that one
// caller giving up does not fail the others; when the last one waiting
// gives up the fetch is cancelled. At most max fetches run at once (0: no
// bound): evidence names the chip to fetch for before anything about it is
// verified, so without a bound made-up chip ids could queue fetches
// without end behind the KDS rate limit.
type flights[K comparable, V any] struct {
	max int
	mu  sync.Mutex
	m   map[K]*flight[V]
}

type flight[V any] struct {
	done    chan struct{}
	val     V
	err     error
	waiters int
	cancel  context.CancelFunc
}

// do returns the result of fn for key, calling fn only if no call for key
// is in flight.
func (f *flights[K, V]) do(ctx context.Context, key K, start func() (context.Context, context.CancelFunc), fn func(context.Context) (V, error)) (v V, err error) {
	f.mu.Lock()
	if f.m == nil {
		f.m = make(map[K]*flight[V])
	}
	fl, shared := f.m[key]
	if !shared {
		if f.max > 0 && len(f.m) >= f.max {
			f.mu.Unlock()
			return v, errBusy
		}
		fctx, release := start()
		fctx, abandon := context.WithCancel(fctx)
		fl = &flight[V]{done: make(chan struct{}), cancel: abandon}
		f.m[key] = fl
		go func() {
			val, err := fn(fctx)
			abandon()
			release()
			f.mu.Lock()
			fl.val, fl.err = val, err
			if f.m[key] == fl {
				delete(f.m, key)
			}
			f.mu.Unlock()
			close(fl.done)
		}()
	}
	fl.waiters++
	f.mu.Unlock()
	select {
	case <-fl.done:
		return fl.val, fl.err
	case <-ctx.Done():
		f.mu.Lock()
		if fl.waiters--; fl.waiters == 0 {
			fl.cancel() // nobody waits for it any more
			if f.m[key] == fl {
				delete(f.m, key) // a later caller starts afresh
			}
		}
		f.mu.Unlock()
		return v, ctx.Err()
	}
}
