package admin

import (
	"context"
	"crypto/ecdsa"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"sync/atomic"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/refvalues"
)

// Engine is the policy engine the layer is applied to (policy.Engine).
type Engine interface {
	SetOverlay(ctx context.Context, o *refvalues.Overlay) error
	Reference() (file *refvalues.Set, overlay *refvalues.Overlay, effective *refvalues.Set, id string)
	ID() string
}

// LayerOptions configure a Layer. Store and Engine are required.
type LayerOptions struct {
	Store  Store
	Engine Engine
	// TrustKey, if not nil, is the key every approval must be signed with
	// (refvalues.SignEntry): an approval whose JWS does not verify under
	// it, wherever it was written, counts as a withdrawal of its label.
	// nil: approvals are taken as stored (still validated).
	TrustKey *ecdsa.PublicKey
	// Logger nil means slog.Default().
	Logger *slog.Logger
	// OnError is called once for each layer version that could not be
	// applied whole (trustgate_config_reload_failures_total); nil: none.
	OnError func(error)
}

// Layer applies the admin layer of a Store to an Engine and follows its
// changes. It is safe for concurrent use.
type Layer struct {
	o       LayerOptions
	mu      sync.Mutex // serialises Sync
	applied int64      // version in force; -1 before the first Sync
	current *refvalues.Overlay
	lastErr atomic.Pointer[error]
}

// NewLayer returns a Layer that has applied nothing yet.
func NewLayer(o LayerOptions) *Layer {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Layer{o: o, applied: -1}
}

// Sync reads the layer from the store and, when its version is not the
// one in force, verifies its records and applies it. A record that does
// not verify (or validate) withdraws its label instead (fail closed) and
// is reported by LastError until a version applies cleanly. A version
// lower than the one in force (Redis lost its data) is not applied: the
// layer in force stays; if the store holds no layer at all, it is written
// back from this replica (logged and counted), else LastError says so and
// an operator must re-apply the changes. An error reaching the store
// is returned (store_unavailable) and changes nothing.
func (l *Layer) Sync(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, err := l.o.Store.Version(ctx)
	if err != nil {
		return err
	}
	if v == l.applied {
		return nil
	}
	if v < l.applied {
		if r, ok := l.o.Store.(restorer); ok && v == 0 {
			done, err := r.Restore(ctx, l.current)
			if err != nil {
				return err
			}
			if done {
				err := fmt.Errorf("admin layer: the store had lost it (Redis lost its data); restored version %d from this replica", l.applied)
				l.o.Logger.Error(err.Error())
				if l.o.OnError != nil {
					l.o.OnError(err)
				}
				return nil
			}
		}
		err := fmt.Errorf("admin layer: the store went back from version %d to %d (its data was lost?); keeping the layer in force, re-apply the admin changes", l.applied, v)
		l.report(err)
		return nil
	}
	o, err := l.o.Store.Load(ctx)
	if err != nil {
		if attest.ReasonOf(err) != attest.ReasonStoreUnavailable {
			l.report(err) // the store answered, with something unusable
		}
		return err
	}
	o, bad := l.verify(o)
	if err := l.o.Engine.SetOverlay(ctx, o); err != nil {
		l.report(err)
		return err
	}
	l.applied, l.current = o.Version, o
	if bad != nil {
		l.report(bad)
	} else {
		l.lastErr.Store(nil)
	}
	if o.Version > 0 {
		l.o.Logger.Info("admin layer applied", "admin_version", o.Version, "appraisal_policy_id", l.o.Engine.ID())
	}
	return nil
}

// restorer is a Store that can put a lost layer back (RedisStore).
type restorer interface {
	Restore(ctx context.Context, o *refvalues.Overlay) (bool, error)
}

// report records err for LastError, logs it and counts it.
func (l *Layer) report(err error) {
	if p := l.lastErr.Load(); p != nil && (*p).Error() == err.Error() {
		return // once per distinct failure
	}
	l.lastErr.Store(&err)
	l.o.Logger.Error("admin layer refused in part or whole; the last good reference values stay in force", "error", err.Error())
	if l.o.OnError != nil {
		l.o.OnError(err)
	}
}

// verify returns o with every approval checked: signed by the trust key
// (when there is one), valid, for its own label. Those that are not become
// withdrawals; bad says which.
func (l *Layer) verify(o *refvalues.Overlay) (*refvalues.Overlay, error) {
	out := &refvalues.Overlay{Version: o.Version, Records: make(map[string]refvalues.Record, len(o.Records))}
	var errs []error
	for label, r := range o.Records {
		if r.Withdrawn() {
			out.Records[label] = r
			continue
		}
		m, err := l.entryOf(r)
		if err == nil && m.Label != label {
			err = errors.New("the entry's label is not its record's")
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("approval of %q: %w", label, err))
			out.Records[label] = refvalues.Record{By: r.By, At: r.At} // withdrawn
			continue
		}
		r.Entry = &m
		out.Records[label] = r
	}
	if errs != nil {
		return out, fmt.Errorf("admin layer version %d: %w (those labels are withdrawn)", o.Version, errors.Join(errs...))
	}
	return out, nil
}

func (l *Layer) entryOf(r refvalues.Record) (refvalues.Measurement, error) {
	if l.o.TrustKey != nil {
		return refvalues.VerifyEntry(l.o.TrustKey, r.JWS)
	}
	m := *r.Entry
	if err := (&refvalues.Set{Measurements: []refvalues.Measurement{m}}).Validate(); err != nil {
		return refvalues.Measurement{}, err
	}
	return m, nil
}

// Follow calls Sync every interval until ctx ends; failures to reach the
// store are logged (at most once a minute) and retried at the next tick.
func (l *Layer) Follow(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	var lastLog time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if err := l.Sync(ctx); err != nil && ctx.Err() == nil && time.Since(lastLog) > time.Minute {
			lastLog = time.Now()
			l.o.Logger.Warn("admin layer: cannot read the store; retrying", "error", err.Error())
		}
	}
}

// LastError is why the layer in force is not the store's whole layer, or
// nil.
func (l *Layer) LastError() error {
	if p := l.lastErr.Load(); p != nil {
		return *p
	}
	return nil
}

// Version is the layer version in force (-1 before the first Sync).
func (l *Layer) Version() int64 {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.applied
}
