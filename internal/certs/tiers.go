package certs

import (
	"context"
	"errors"
	"fmt"
	"time"
)

type freshness int

const (
	fresh freshness = iota
	stale
	expired
)

// refreshPoint is F + frac*(U-F), at the latest U.
func refreshPoint(fetched, until time.Time, frac float64) time.Time {
	if !until.After(fetched) {
		return until
	}
	return fetched.Add(time.Duration(frac * float64(until.Sub(fetched))))
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
