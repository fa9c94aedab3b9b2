package pcs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/fetch"
	"github.com/trustgate/trustgate/internal/tiered"
)

// Refusals of a lookup.
var (
	errUnknownPCKCA  = errors.New(`the PCK CA is neither "platform" nor "processor"`)
	errOfflineNoCopy = errors.New("offline, and no usable cached copy")
)

// waitUntil is when ctx's lookups stop waiting for fetches; zero: never.
func (s *Service) waitUntil(ctx context.Context) time.Time {
	if s.wait <= 0 {
		return time.Time{}
	}
	return attest.WaitUntil(ctx, time.Now(), s.wait)
}

// get returns the entry of k: from memory when fresh (a stale one is
// served while a refresh runs in the background), else through the tiers
// and PCS, one fetch per key, waiting until until (zero: the fetch's end).
func (s *Service) get(ctx context.Context, k docKey, until time.Time) (*entry, error) {
	now := s.now()
	if e, ok := s.mem.Get(k); ok {
		switch e.State(now) {
		case tiered.Fresh:
			return e, nil
		case tiered.Stale:
			s.run.RefreshLater(&e.Lifetime, now, func(ctx context.Context) { s.flight(ctx, k, time.Time{}) })
			return e, nil
		}
	}
	e, err := s.flight(ctx, k, until)
	if err == nil && e.State(s.now()) == tiered.Expired {
		err = fmt.Errorf("%s: the held copy expired", k.what())
	}
	return e, err
}

// flight resolves k, one fetch per key (tiered.Flights): a caller that
// asks for a key in flight waits for that fetch, which runs on its own
// context (FetchTimeout, ended by Close), so callers that stop waiting do
// not end it. One that stops waiting gets a Retry-After hint: the hold-back
// of a PCS Retry-After, else a second.
func (s *Service) flight(ctx context.Context, k docKey, until time.Time) (*entry, error) {
	e, err := s.flights.Do(ctx, k, tiered.Join{Until: until}, s.run.FetchContext, func(fctx context.Context) (*entry, error) {
		return s.resolve(fctx, k)
	})
	if errors.Is(err, tiered.ErrStillRunning) {
		return nil, &fetch.RetryLater{Err: err, After: max(s.pcs.lim.HeldBack(), time.Second)}
	}
	return e, err
}

// held is the newest usable copy of k in memory and the tiers, reading
// the tiers until enough(the newest so far) holds; a record that does not
// verify is dropped from its tier.
func (s *Service) held(ctx context.Context, k docKey, now time.Time, enough func(*entry) bool) *entry {
	best, _ := s.mem.Get(k)
	if best != nil && best.State(now) == tiered.Expired {
		best = nil
	}
	return tiered.Newest(ctx, s.tiers, k.name(), k.what(), best,
		func(rec *record) (*entry, error) { return s.newEntry(k, rec, now) }, (*entry).newer, enough)
}

// resolve finds the newest usable copy of k in memory and the tiers and,
// unless it is fresh, asks PCS, falling back to the held copy within its
// staleness. A document older than the one held is never taken (no
// rollback).
func (s *Service) resolve(ctx context.Context, k docKey) (*entry, error) {
	now := s.now()
	best := s.held(ctx, k, now, func(e *entry) bool { return e.State(now) == tiered.Fresh })
	if best != nil && best.State(now) == tiered.Fresh {
		s.mem.Put(k, best)
		return best, nil
	}
	var err error
	if s.offline {
		err = errOfflineNoCopy
	} else {
		u, headers := s.url(k)
		var resp *response
		if resp, err = s.pcs.get(ctx, k.what(), u, headers...); err == nil {
			rec := &record{Body: resp.body, Chain: resp.chain, FetchedAt: s.now()}
			var e *entry
			switch e, err = s.newEntry(k, rec, rec.FetchedAt); {
			case err != nil:
				err = fmt.Errorf("PCS %s does not verify: %w", k.what(), err)
			case best != nil && best.newer(e):
				err = fmt.Errorf("PCS served a %s issued %s, older than the one held (%s)", k.what(),
					e.issued.Format(time.RFC3339), best.issued.Format(time.RFC3339))
			default:
				s.mem.Put(k, e)
				s.tiers.Persist(ctx, k.name(), rec, e.next.Sub(rec.FetchedAt))
				return e, nil
			}
		}
	}
	now = s.now()
	if best != nil && best.State(now) == tiered.Stale {
		s.mem.Put(k, best)
		s.log.Warn("serving collateral past its refresh point", "document", k.what(),
			"stale_for", now.Sub(best.RefreshAt).Round(time.Second).String(), "next_update", best.next.Format(time.RFC3339), "error", err.Error())
		return best, nil
	}
	return nil, fmt.Errorf("%s: %w", k.what(), err)
}
