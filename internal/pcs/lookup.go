package pcs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/fetch"
	"github.com/trustgate/trustgate/internal/tee/tdx"
)

// Refusals of a lookup that cannot wait for a fetch.
var (
	errBusy          = errors.New("too many PCS fetches in flight or waited for; retry later")
	errStillRunning  = errors.New("the PCS fetch did not end in time; it goes on in the background, retry later")
	errUnknownPCKCA  = errors.New(`the PCK CA is neither "platform" nor "processor"`)
	errOfflineNoCopy = errors.New("offline, and no usable cached copy")
)

// Collateral implements tdx.CollateralSource: the TCB info of req.FMSPC,
// the TD QE identity, the CRL of req.CA and the root's CRL, each verified,
// from the tiers or PCS. It waits for fetches at most FetchWait. Errors are
// collateral_unavailable.
func (s *Service) Collateral(ctx context.Context, req tdx.CollateralRequest) (*tdx.Collateral, error) {
	if req.CA != "platform" && req.CA != "processor" {
		return nil, attest.WithReason(attest.ReasonCollateralUnavailable, "collateral", errUnknownPCKCA)
	}
	keys := [4]docKey{{kind: kindTCB, fmspc: req.FMSPC}, {kind: kindQE}, {kind: kindPCKCRL, ca: req.CA}, {kind: kindRootCRL}}
	var es [4]*entry
	now := s.now()
	warm := true
	for i, k := range keys {
		if e, ok := s.mem.Get(k); ok && e.state(now) == fresh {
			es[i] = e
		} else {
			warm = false
		}
	}
	if !warm { // the four lookups at once, each waiting until the same time
		until := s.waitUntil(ctx)
		var errs [4]error
		var wg sync.WaitGroup
		for i, k := range keys {
			wg.Go(func() { es[i], errs[i] = s.get(ctx, k, until) })
		}
		wg.Wait()
		if err := errors.Join(errs[:]...); err != nil {
			return nil, attest.WithReason(attest.ReasonCollateralUnavailable, "collateral", err)
		}
	}
	ak := asmKey{fmspc: req.FMSPC, ca: req.CA}
	if a, ok := s.assembled.Get(ak); ok && a.parts == es {
		return a.col, nil
	}
	col := tdx.MergeCollateral(es[0].col, es[1].col, es[2].col, es[3].col)
	s.assembled.Put(ak, &assembly{parts: es, col: col})
	return col, nil
}

// asmKey and assembly: the collateral of one FMSPC and PCK CA, made once
// from its four entries (so that what the verifier checks of it, such as
// CRL signatures, is checked once) and made again when an entry changes.
type asmKey struct {
	fmspc [6]byte
	ca    string
}

type assembly struct {
	parts [4]*entry
	col   *tdx.Collateral
}

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
		switch e.state(now) {
		case fresh:
			return e, nil
		case stale:
			s.refreshLater(e, now)
			return e, nil
		}
	}
	e, err := s.flight(ctx, k, until)
	if err == nil && e.state(s.now()) == expired {
		err = fmt.Errorf("%s: the held copy expired", k.what())
	}
	return e, err
}

// flight is one fetch per key: a caller that asks for a key in flight
// waits for that fetch. The fetch runs on its own context (FetchTimeout,
// ended by Close), so callers that stop waiting do not end it.
type flight struct {
	done chan struct{}
	e    *entry
	err  error
}

func (s *Service) flight(ctx context.Context, k docKey, until time.Time) (*entry, error) {
	s.fmu.Lock()
	fl, ok := s.flights[k]
	if (!ok && len(s.flights) >= maxFlights) || s.waiting >= maxWaiting {
		s.fmu.Unlock()
		return nil, errBusy
	}
	if !ok {
		if !s.track() {
			s.fmu.Unlock()
			return nil, errors.New("the collateral service is closed")
		}
		fl = &flight{done: make(chan struct{})}
		s.flights[k] = fl
		fctx, cancel := context.WithTimeout(s.bg, s.fetchTO)
		go func() {
			defer s.wg.Done()
			defer cancel()
			e, err := s.resolve(fctx, k)
			s.fmu.Lock()
			fl.e, fl.err = e, err
			delete(s.flights, k)
			s.fmu.Unlock()
			close(fl.done)
		}()
	}
	s.waiting++
	s.fmu.Unlock()
	defer func() {
		s.fmu.Lock()
		s.waiting--
		s.fmu.Unlock()
	}()
	var timeout <-chan time.Time
	if !until.IsZero() {
		t := time.NewTimer(time.Until(until))
		defer t.Stop()
		timeout = t.C
	}
	select {
	case <-fl.done:
		return fl.e, fl.err
	case <-ctx.Done():
		return nil, ctx.Err()
	case <-timeout:
		select {
		case <-fl.done:
			return fl.e, fl.err
		default:
		}
		err := errStillRunning
		if h := s.pcs.lim.heldBack(); h > 0 {
			return nil, &fetch.RetryLater{Err: err, After: h}
		}
		return nil, &fetch.RetryLater{Err: err, After: time.Second}
	}
}

// refreshLater refreshes a stale entry in the background, at most once a
// minute.
func (s *Service) refreshLater(e *entry, now time.Time) {
	if !e.nextTry.TryLock() {
		return
	}
	due := now.Sub(e.tried) >= time.Minute
	if due {
		e.tried = now
	}
	e.nextTry.Unlock()
	if !due || !s.track() {
		return
	}
	go func() {
		defer s.wg.Done()
		s.flight(s.bg, e.key, time.Time{})
	}()
}

// resolve finds the newest usable copy of k in memory and the tiers and,
// unless it is fresh, asks PCS, falling back to the held copy within its
// staleness.
func (s *Service) resolve(ctx context.Context, k docKey) (*entry, error) {
	now := s.now()
	best, _ := s.mem.Get(k)
	if best != nil && best.state(now) == expired {
		best = nil
	}
	for _, t := range s.tiers {
		if best != nil && best.state(now) == fresh {
			break
		}
		rec, err := t.get(ctx, k.name())
		if err != nil {
			s.log.Warn("collateral cache tier failed", "tier", t.kind(), "error", err.Error())
			continue
		}
		if rec == nil {
			continue
		}
		e, err := s.newEntry(k, rec, now)
		switch {
		case errors.Is(err, errNotNow):
		case err != nil:
			s.log.Warn("dropping an unusable cached collateral document", "tier", t.kind(), "document", k.what(), "error", err.Error())
			t.del(ctx, k.name())
		case e.newer(best):
			best = e
		}
	}
	if best != nil && best.state(now) == fresh {
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
				s.persist(ctx, k, rec, e.next.Sub(rec.FetchedAt))
				return e, nil
			}
		}
	}
	now = s.now()
	if best != nil && best.state(now) == stale {
		s.mem.Put(k, best)
		s.log.Warn("serving collateral past its refresh point", "document", k.what(),
			"stale_for", now.Sub(best.refreshAt).Round(time.Second).String(), "next_update", best.next.Format(time.RFC3339), "error", err.Error())
		return best, nil
	}
	return nil, fmt.Errorf("%s: %w", k.what(), err)
}

// persist writes a record to every persistent tier, logging failures.
func (s *Service) persist(ctx context.Context, k docKey, rec *record, ttl time.Duration) {
	for _, t := range s.tiers {
		if err := t.put(ctx, k.name(), rec, ttl); err != nil {
			s.log.Warn("collateral cache tier failed", "tier", t.kind(), "error", err.Error())
		}
	}
}
