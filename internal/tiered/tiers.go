package tiered

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"
)

// ErrNotNow marks a refusal that depends on the clock (a certificate not
// valid at the time asked about, a document issued later or past its
// nextUpdate): the record itself is sound and stays in its tier for other
// clocks and later times.
var ErrNotNow = errors.New("not usable at this time")

// Tiers are the persistent tiers of one service in the order they are
// read (disk, then Redis). Failures are logged to Log, naming the cache by
// Name ("certificate", "collateral"), and never the key.
type Tiers[R any] struct {
	Stores []Store[R]
	Log    *slog.Logger
	Name   string
}

// Walk reads key from the tiers in order until enough() holds, giving
// each record found to take; one that take refuses is logged and, unless
// the refusal is ErrNotNow, deleted from its tier. what names the entry in
// logs.
func (t *Tiers[R]) Walk(ctx context.Context, key, what string, enough func() bool, take func(*R) error) {
	for _, st := range t.Stores {
		if enough() {
			return
		}
		rec, err := st.Get(ctx, key)
		if err != nil {
			t.Log.Warn(t.Name+" cache tier failed", "tier", st.Kind(), "error", err.Error())
			continue
		}
		if rec == nil {
			continue
		}
		if err := take(rec); errors.Is(err, ErrNotNow) {
			t.Log.Warn("a cached "+t.Name+" entry is not usable at this time", "tier", st.Kind(), "entry", what, "error", err.Error())
		} else if err != nil {
			t.Log.Warn("dropping an unusable cached "+t.Name+" entry", "tier", st.Kind(), "entry", what, "error", err.Error())
			st.Del(ctx, key)
		}
	}
}

// Persist writes a record to every tier, logging failures.
func (t *Tiers[R]) Persist(ctx context.Context, key string, rec *R, ttl time.Duration) {
	for _, st := range t.Stores {
		if err := st.Put(ctx, key, rec, ttl); err != nil {
			t.Log.Warn(t.Name+" cache tier failed", "tier", st.Kind(), "error", err.Error())
		}
	}
}

// PutAll writes a record to every tier; unlike Persist it fails on the
// first error (an import must not half succeed silently).
func (t *Tiers[R]) PutAll(ctx context.Context, key string, rec *R, ttl time.Duration) error {
	for _, st := range t.Stores {
		if err := st.Put(ctx, key, rec, ttl); err != nil {
			return fmt.Errorf("%s tier: %w", st.Kind(), err)
		}
	}
	return nil
}

// Open returns the tiers a service configures: the disk tier under dir
// (defaultDir's when "", none when noDisk or when there is no default
// directory, which is logged) and the Redis tier when client is not nil.
func Open[R any](name string, log *slog.Logger, codec Codec[R], dir string, noDisk bool, defaultDir func() (string, error), client redis.UniversalClient, prefix string) *Tiers[R] {
	t := &Tiers[R]{Log: log, Name: name}
	if !noDisk {
		if dir == "" {
			d, err := defaultDir()
			if err != nil {
				log.Warn("no user cache directory; the "+name+" disk cache is off", "error", err.Error())
			}
			dir = d
		}
		if dir != "" {
			t.Stores = append(t.Stores, &Disk[R]{Dir: dir, Codec: codec})
		}
	}
	if client != nil {
		t.Stores = append(t.Stores, &Redis[R]{Client: client, Prefix: prefix, Codec: codec})
	}
	return t
}

// Newest is the newest usable entry of key: best (what memory holds; nil
// for none) or one made by parse from a record of the tiers, read in
// order until enough(the newest so far) holds. newer(e, best) says whether
// e replaces best (best may be nil). A record that parse refuses is
// dropped from its tier unless the refusal is ErrNotNow (see Walk).
func Newest[R, E any](ctx context.Context, t *Tiers[R], key, what string, best *E, parse func(*R) (*E, error), newer func(e, best *E) bool, enough func(*E) bool) *E {
	t.Walk(ctx, key, what, func() bool { return best != nil && enough(best) }, func(rec *R) error {
		e, err := parse(rec)
		if err == nil && newer(e, best) {
			best = e
		}
		return err
	})
	return best
}
