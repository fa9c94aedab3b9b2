package admin

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
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

// Memory keeps the newest layer this replica has held across its
// restarts (the state directory: state.Dir).
type Memory interface {
	Read(name string, v any) (bool, error)
	Write(name string, v any) error
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
	// Memory, if not nil, keeps the newest layer held (record
	// "admin_layer"): a replica restarted against a store that went back
	// writes it back instead of applying the older one. nil: the replica
	// remembers only while it runs.
	Memory Memory
	// Logger nil means slog.Default().
	Logger *slog.Logger
	// OnError is called once for each layer version that could not be
	// applied whole (trustgate_config_reload_failures_total, kind
	// invalid); nil: none.
	OnError func(error)
	// OnRollback is called each time the store is found holding an older
	// layer than one held (kind rollback); nil: none.
	OnRollback func(error)
	// OnUnconfirmed is called once for each layer version applied with
	// its approvals held out because it is not confirmed (kind
	// unconfirmed); nil: none.
	OnUnconfirmed func(error)
}

// Layer applies the admin layer of a Store to an Engine and follows its
// changes. It is safe for concurrent use.
type Layer struct {
	o       LayerOptions
	fp      string // TrustKeyFingerprint(o.TrustKey)
	mu      sync.Mutex
	applied int64              // version in force; -1 before the first Sync
	held    *refvalues.Overlay // the newest layer held (as stored, unverified)
	bad     error              // why the layer in force is not whole
	// confirmed: the layer in force was confirmed on the store's
	// current run (else its approvals are held out).
	confirmed bool
	unconfAt  int64 // the last version reported unconfirmed
	lastErr   atomic.Pointer[error]
}

// TrustKeyFingerprint is the requirement a replica records in the layer:
// "sha256:" and the hex SHA-256 of k's PKIX DER, or "none" for nil.
func TrustKeyFingerprint(k *ecdsa.PublicKey) string {
	if k == nil {
		return "none"
	}
	der, err := x509.MarshalPKIXPublicKey(k)
	if err != nil {
		return "invalid"
	}
	sum := sha256.Sum256(der)
	return "sha256:" + hex.EncodeToString(sum[:])
}

// memoryRecord is the Memory record of the newest layer held.
const memoryRecord = "admin_layer"

// NewLayer returns a Layer that has applied nothing yet; with Memory, it
// remembers the newest layer held before (an error reading it is
// returned).
func NewLayer(o LayerOptions) (*Layer, error) {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	l := &Layer{o: o, applied: -1, unconfAt: -1, fp: TrustKeyFingerprint(o.TrustKey)}
	if o.Memory != nil {
		var held refvalues.Overlay
		ok, err := o.Memory.Read(memoryRecord, &held)
		if err != nil {
			return nil, fmt.Errorf("admin layer: %w", err)
		}
		if ok {
			l.held = &held
		}
	}
	return l, nil
}

// TrustError is a replica whose trust key requirement is not the fleet's.
type TrustError struct{ Fleet, Replica string }

func (e *TrustError) Error() string {
	return fmt.Sprintf("admin layer: the fleet requires approvals signed by %s, this replica's refvalues_trust_key gives %s: every replica of a fleet needs the same key (or none)", e.Fleet, e.Replica)
}

// CheckTrust compares the trust key requirement the layer records (in the
// store, or in Memory) with this replica's: another one is a *TrustError
// (serve exits 2). A replica with a trust key records its requirement in
// a shared store that records none yet, so that a replica without the
// key neither starts nor writes on it from then on. An error reaching the
// store is returned as is.
func (l *Layer) CheckTrust(ctx context.Context) error {
	o, err := l.o.Store.Load(ctx)
	if err != nil {
		return err
	}
	fleet := o.TrustKey
	if c, ok := l.o.Store.(interface {
		ClaimTrust(context.Context, string) (string, error)
	}); ok && fleet == "" && l.o.TrustKey != nil && (l.heldTrust() == "" || l.heldTrust() == l.fp) {
		if fleet, err = c.ClaimTrust(ctx, l.fp); err != nil {
			return err
		}
	}
	for _, fleet := range []string{fleet, l.heldTrust()} {
		if fleet != "" && fleet != l.fp {
			return &TrustError{Fleet: fleet, Replica: l.fp}
		}
	}
	return nil
}

func (l *Layer) heldTrust() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.held == nil {
		return ""
	}
	return l.held.TrustKey
}

// Sync reads the layer from the store and, when its version is not the
// one in force, verifies its records and applies it. A record that does
// not verify (or validate) withdraws its label instead (fail closed) and
// is reported by LastError while that version is in force.
//
// A store holding an older layer than the newest held (a restore from a
// snapshot, a failover to a replica that lagged, a Redis that lost its
// data) is never applied: the newest held is written back (only if the
// store has not changed since it was read), logged and counted
// (OnRollback), and stays in force. An error reaching the store is
// returned (store_unavailable) and changes nothing.
//
// A layer the store does not say is confirmed (Confirmer: its Redis
// restarted, was restored or failed over since) is confirmed by this
// replica if it holds this very layer (a newer one is written back, as
// above). If it holds none, it cannot tell a restore from a restart: the layer is applied with its
// withdrawals and every approval held out of force (fail closed), and
// reported (LastError, OnUnconfirmed) until the layer is confirmed, by a
// replica that remembers or by an operator (Confirm).
func (l *Layer) Sync(ctx context.Context) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	v, ok, err := l.version(ctx)
	if err != nil {
		return err
	}
	if l.held != nil && v < l.held.Version {
		return l.heal(ctx, v)
	}
	if v == l.applied && ok == l.confirmed {
		l.setErr(l.bad)
		return nil
	}
	o, ok, err := l.load(ctx)
	if err != nil {
		if attest.ReasonOf(err) != attest.ReasonStoreUnavailable {
			l.report(err) // the store answered, with something unusable
		}
		return err
	}
	if l.held != nil && o.Version < l.held.Version {
		return l.heal(ctx, o.Version)
	}
	if ok, err = l.vouch(ctx, o, ok); err != nil {
		return err
	}
	if err := l.apply(ctx, o, ok); err != nil {
		return err
	}
	if !ok {
		return nil // neither remembered nor held: it may be one the fleet left behind
	}
	if l.o.Memory != nil && (l.held == nil || o.Version > l.held.Version) {
		if err := l.o.Memory.Write(memoryRecord, o); err != nil {
			l.o.Logger.Error("admin layer: not written to the state directory; a restart may not notice a store that went back", "error", err.Error())
		}
	}
	if l.held == nil || o.Version >= l.held.Version {
		l.held = o
	}
	return nil
}

// version is the store's version and whether its layer is confirmed
// (always, for a store that is not a Confirmer).
func (l *Layer) version(ctx context.Context) (int64, bool, error) {
	if c, ok := l.o.Store.(Confirmer); ok {
		return c.VersionConfirmed(ctx)
	}
	v, err := l.o.Store.Version(ctx)
	return v, true, err
}

func (l *Layer) load(ctx context.Context) (*refvalues.Overlay, bool, error) {
	if c, ok := l.o.Store.(Confirmer); ok {
		return c.LoadConfirmed(ctx)
	}
	o, err := l.o.Store.Load(ctx)
	return o, true, err
}

// vouch confirms the store's layer o, not confirmed, if this replica
// holds a newer one (written back) or this very one (its Redis restarted
// while it ran, or before it restarted with its state directory); it
// returns whether the layer is confirmed now. Another layer under the
// version held (changes made on the store after it went back) is not.
func (l *Layer) vouch(ctx context.Context, o *refvalues.Overlay, ok bool) (bool, error) {
	c, isC := l.o.Store.(Confirmer)
	if ok || !isC || l.held == nil || l.held.Version != o.Version {
		return ok, nil
	}
	if !sameLayer(o, l.held) {
		l.o.Logger.Error("admin layer: the store holds another layer under the version this replica holds (changed after it went back): not confirmed", "kind", "unconfirmed", "admin_version", o.Version)
		return false, nil
	}
	done, err := c.Confirm(ctx, o.Version)
	if err != nil {
		return false, err
	}
	if done {
		l.o.Logger.Info("admin layer confirmed on the store's current run (its Redis restarted, or came back from a snapshot holding the layer this replica holds)", "admin_version", o.Version)
	}
	return done, nil
}

// sameLayer reports whether a and b are the same layer, record for record.
func sameLayer(a, b *refvalues.Overlay) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && bytes.Equal(ja, jb)
}

// Confirm is the operator's confirmation of the store's layer as it is
// (POST /admin/v1/reference-values/confirm): its approvals, held out of
// force by replicas that could not tell it from a layer the fleet left
// behind, come back in force. want >= 0 is the version the operator
// reviewed: another one is not confirmed. It returns the store's version,
// and false if it was not confirmed (not want, or changed in between). A
// store that is not a Confirmer has nothing to confirm.
func (l *Layer) Confirm(ctx context.Context, want int64) (int64, bool, error) {
	c, ok := l.o.Store.(Confirmer)
	if !ok {
		v, err := l.o.Store.Version(ctx)
		return v, err == nil && (want < 0 || want == v), err
	}
	v, _, err := c.VersionConfirmed(ctx)
	if err != nil || (want >= 0 && want != v) {
		return v, false, err
	}
	done, err := c.Confirm(ctx, v)
	if err != nil || !done {
		return v, false, err
	}
	return v, true, l.Sync(ctx)
}

// Unconfirmed reports whether the layer in force has its approvals held
// out because the store's layer is not confirmed.
func (l *Layer) Unconfirmed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.applied >= 0 && !l.confirmed
}

// UnconfirmedError is why a layer's approvals are held out of force: the
// store's layer is not confirmed on its current run and this replica
// does not hold it or a newer one (kind unconfirmed).
type UnconfirmedError struct{ Version int64 }

func (e *UnconfirmedError) Error() string {
	return fmt.Sprintf("admin layer: unconfirmed: version %d was not confirmed since the store's Redis restarted, came back from a snapshot or failed over, and this replica does not remember it or a newer one: its approvals are held out of force (withdrawals kept) until a replica that remembers confirms it or an operator does (POST %s)", e.Version, PathConfirm)
}

// heal writes the newest layer held back over a store at version from,
// and applies it if it is not in force.
func (l *Layer) heal(ctx context.Context, from int64) error {
	done, err := l.o.Store.Restore(ctx, l.held, from)
	if err != nil {
		return err
	}
	if _, own := l.o.Store.(*MemoryStore); done && own {
		// A replica without Redis: its own layer, back from its state
		// directory after a restart. Not a rollback.
		l.o.Logger.Info("admin layer restored from the state directory", "admin_version", l.held.Version)
	} else if done {
		err := fmt.Errorf("admin layer: rollback: the store went back from version %d to %d (a restore from a snapshot, a failover to a replica that lagged, or lost data); wrote this replica's version %d back", l.held.Version, from, l.held.Version)
		l.o.Logger.Error(err.Error(), "kind", "rollback", "admin_version", l.held.Version, "store_version", from)
		if l.o.OnRollback != nil {
			l.o.OnRollback(err)
		}
	}
	if l.applied != l.held.Version || !l.confirmed {
		return l.apply(ctx, l.held, true) // this replica's own: it vouches for it
	}
	l.setErr(l.bad)
	return nil
}

// apply verifies o and puts it in force; a layer not confirmed has its
// approvals held out.
func (l *Layer) apply(ctx context.Context, o *refvalues.Overlay, confirmed bool) error {
	v, bad := l.verify(o)
	var unconf error
	if !confirmed {
		unconf = &UnconfirmedError{Version: o.Version}
		for label, r := range v.Records {
			if !r.Withdrawn() {
				v.Records[label] = refvalues.Record{By: r.By, At: r.At}
			}
		}
	}
	if err := l.o.Engine.SetOverlay(ctx, v); err != nil {
		l.report(err)
		return err
	}
	l.applied, l.confirmed, l.bad = o.Version, confirmed, errors.Join(bad, unconf)
	if bad != nil {
		l.report(bad)
	}
	if unconf != nil && l.unconfAt != o.Version {
		l.unconfAt = o.Version
		l.o.Logger.Error(unconf.Error(), "kind", "unconfirmed", "admin_version", o.Version)
		if l.o.OnUnconfirmed != nil {
			l.o.OnUnconfirmed(unconf)
		}
	}
	l.setErr(l.bad)
	if o.Version > 0 {
		l.o.Logger.Info("admin layer applied", "admin_version", o.Version, "appraisal_policy_id", l.o.Engine.ID(), "confirmed", confirmed)
	}
	return nil
}

func (l *Layer) setErr(err error) {
	if err == nil {
		l.lastErr.Store(nil)
		return
	}
	l.lastErr.Store(&err)
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

// verify returns o's records with every approval checked: signed by the
// trust key (when there is one), valid, for its own label, under the
// replica's own trust key requirement. Those that are not become
// withdrawals; bad says which.
func (l *Layer) verify(o *refvalues.Overlay) (*refvalues.Overlay, error) {
	out := &refvalues.Overlay{Version: o.Version, Records: make(map[string]refvalues.Record, len(o.Records)), TrustKey: o.TrustKey}
	var errs []error
	if o.TrustKey != "" && o.TrustKey != l.fp {
		errs = append(errs, &TrustError{Fleet: o.TrustKey, Replica: l.fp})
	}
	for label, r := range o.Records {
		if r.Withdrawn() {
			out.Records[label] = r
			continue
		}
		m, err := l.entryOf(r)
		if err == nil && m.Label != label {
			err = errors.New("the entry's label is not its record's")
		}
		if err == nil && len(errs) > 0 {
			err = errors.New("trust key requirement")
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
		a, err := refvalues.VerifyEntry(l.o.TrustKey, r.JWS)
		return a.Measurement, err
	}
	if r.Entry == nil {
		return refvalues.Measurement{}, errors.New("no entry")
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
