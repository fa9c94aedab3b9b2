package certs

import (
	"context"
	"errors"
	"fmt"
	"sync/atomic"
	"time"
)

// freshness is where a cached VCEK or CRL stands in its lifetime.
type freshness int

const (
	fresh   freshness = iota // before its refresh point: served as it is
	stale                    // past it: served while a refresh runs
	expired                  // past usableTill: not served
)

// lifetime is the freshness of one cached VCEK or CRL: fetched at
// fetchedAt, valid until a time U (the VCEK's notAfter, the CRL's
// nextUpdate), fresh until refreshAt = fetchedAt + frac*(U-fetchedAt),
// then stale until usableTill, then expired. The VCEK and CRL paths share
// it, with their own usableTill.
type lifetime struct {
	fetchedAt  time.Time
	refreshAt  time.Time
	usableTill time.Time
	nextTry    atomic.Int64 // UnixNano before which no background refresh starts
}

// setLifetime sets l for a record fetched at fetched (not later than now)
// and valid until until: refreshAt is the refresh point within it, and
// usableTill what usable(refreshAt) says (at the latest the cap, when it
// is not zero).
func (l *lifetime) set(fetched, now, until time.Time, frac float64, usable func(refreshAt time.Time) time.Time) {
	if fetched.After(now) {
		fetched = now
	}
	l.fetchedAt = fetched
	l.refreshAt = fetched
	if until.After(fetched) {
		l.refreshAt = fetched.Add(time.Duration(frac * float64(until.Sub(fetched))))
	} else {
		l.refreshAt = until
	}
	l.usableTill = usable(l.refreshAt)
}

func (l *lifetime) state(now time.Time) freshness {
	switch {
	case now.After(l.usableTill):
		return expired
	case now.Before(l.refreshAt):
		return fresh
	}
	return stale
}

// refreshLater runs refresh in the background on the Service's context,
// at most once a minute per lifetime, and not once the Service is closed.
func (s *Service) refreshLater(l *lifetime, now time.Time, refresh func(ctx context.Context)) {
	next := l.nextTry.Load()
	if now.UnixNano() < next || !l.nextTry.CompareAndSwap(next, now.Add(time.Minute).UnixNano()) {
		return
	}
	if !s.track() {
		return
	}
	go func() {
		defer s.wg.Done()
		refresh(s.bg)
	}()
}

// errNotNow marks a refusal that depends on the clock (a certificate not
// valid at the time asked about, a CRL issued later): the record itself is
// sound and stays in its tier for other clocks and later times.
var errNotNow = errors.New("not usable at this time")

// fromTiers reads name from the persistent tiers in order until enough()
// holds, giving each record found to take; one that take refuses is
// logged and, unless the refusal is errNotNow, deleted from its tier.
// what names the entry in logs.
func (s *Service) fromTiers(ctx context.Context, name, what string, enough func() bool, take func(*record) error) {
	for _, t := range s.tiers {
		if enough() {
			return
		}
		rec, err := t.get(ctx, name)
		if err != nil {
			s.log.Warn("certificate cache tier failed", "tier", t.kind(), "error", err.Error())
			continue
		}
		if rec == nil {
			continue
		}
		if err := take(rec); errors.Is(err, errNotNow) {
			s.log.Warn("a cached entry is not usable at this time", "tier", t.kind(), "entry", what, "error", err.Error())
		} else if err != nil {
			s.log.Warn("dropping an unusable cached entry", "tier", t.kind(), "entry", what, "error", err.Error())
			t.del(ctx, name)
		}
	}
}

// persist writes a record to every persistent tier, logging failures.
func (s *Service) persist(ctx context.Context, name string, rec *record, ttl time.Duration) {
	for _, t := range s.tiers {
		if err := t.put(ctx, name, rec, ttl); err != nil {
			s.log.Warn("certificate cache tier failed", "tier", t.kind(), "error", err.Error())
		}
	}
}

// putAll writes a record to every persistent tier; unlike persist it
// fails on the first error (an import must not half succeed silently).
func (s *Service) putAll(ctx context.Context, name string, rec *record, ttl time.Duration) error {
	for _, t := range s.tiers {
		if err := t.put(ctx, name, rec, ttl); err != nil {
			return fmt.Errorf("%s tier: %w", t.kind(), err)
		}
	}
	return nil
}
