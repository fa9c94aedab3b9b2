package certs

import (
	"context"
	"sync"
)

// flights runs at most one fetch per key at a time: callers that ask for
// a key already in flight wait for that fetch's result instead of making
// their own request. The fetch runs on its own context (detached from
// every caller's, bounded by the Service's fetch timeout) so that one
// caller giving up does not fail the others; a caller whose ctx ends
// stops waiting.
type flights[K comparable, V any] struct {
	mu sync.Mutex
	m  map[K]*flight[V]
}

type flight[V any] struct {
	done chan struct{}
	val  V
	err  error
}

// do returns the result of fn for key, calling fn only if no call for key
// is in flight. shared reports whether the result came from another
// caller's call.
func (f *flights[K, V]) do(ctx context.Context, key K, start func() (context.Context, context.CancelFunc), fn func(context.Context) (V, error)) (v V, shared bool, err error) {
	f.mu.Lock()
	if f.m == nil {
		f.m = make(map[K]*flight[V])
	}
	fl, ok := f.m[key]
	if !ok {
		fl = &flight[V]{done: make(chan struct{})}
		f.m[key] = fl
		go func() {
			fctx, cancel := start()
			fl.val, fl.err = fn(fctx)
			cancel()
			f.mu.Lock()
			delete(f.m, key)
			f.mu.Unlock()
			close(fl.done)
		}()
	}
	f.mu.Unlock()
	select {
	case <-fl.done:
		return fl.val, ok, fl.err
	case <-ctx.Done():
		var zero V
		return zero, ok, ctx.Err()
	}
}
