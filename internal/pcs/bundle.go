package pcs

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/tdx"
)

// BundleEntry is one collateral document of an offline bundle (the "tdx"
// part of a `trustgate certs fetch` bundle).
type BundleEntry struct {
	// Name is "tcb/<FMSPC, 12 upper-case hex>", "qe", "pckcrl/platform",
	// "pckcrl/processor" or "rootcrl".
	Name      string    `json:"name"`
	FetchedAt time.Time `json:"fetched_at"`
	// Body is the document as PCS served it (base64 in JSON).
	Body []byte `json:"body"`
	// Chain is the issuer chain of its response (PEM), if any.
	Chain string `json:"chain,omitempty"`
}

// Export returns the documents the quotes of reqs need (TCB infos of their
// FMSPCs, the QE identity, their PCK CAs' CRLs, the root's CRL), each
// verified, from the tiers or PCS, waiting for every fetch. What could not
// be had is in the joined error; the entries hold the rest.
func (s *Service) Export(ctx context.Context, reqs []tdx.CollateralRequest) ([]BundleEntry, error) {
	seen := map[docKey]bool{}
	var keys []docKey
	add := func(k docKey) {
		if !seen[k] {
			seen[k] = true
			keys = append(keys, k)
		}
	}
	var errs []error
	for _, r := range reqs {
		if r.CA != "platform" && r.CA != "processor" {
			errs = append(errs, errUnknownPCKCA)
			continue
		}
		add(docKey{kind: kindTCB, fmspc: r.FMSPC})
		add(docKey{kind: kindPCKCRL, ca: r.CA})
	}
	if len(keys) > 0 {
		add(docKey{kind: kindQE})
		add(docKey{kind: kindRootCRL})
	}
	var out []BundleEntry
	for _, k := range keys {
		e, err := s.get(ctx, k, time.Time{})
		if err != nil {
			errs = append(errs, attest.WithReason(attest.ReasonCollateralUnavailable, "collateral", err))
			continue
		}
		out = append(out, BundleEntry{Name: k.name(), FetchedAt: e.rec.FetchedAt, Body: e.rec.Body, Chain: string(e.rec.Chain)})
	}
	return out, errors.Join(errs...)
}

// ImportResult counts what Import stored and what it kept because a
// newer copy was held.
type ImportResult struct {
	Stored, Kept int
}

// Import verifies every entry (the document its name says, under the
// pinned root, issued and not expired at the time of the clock) and, only
// if all do, stores them in the tiers, except where a newer copy is held.
func (s *Service) Import(ctx context.Context, entries []BundleEntry) (ImportResult, error) {
	now := s.now()
	es := make([]*entry, len(entries))
	for i, b := range entries {
		k, err := parseName(b.Name)
		if err != nil {
			return ImportResult{}, fmt.Errorf("bundle entry %d: %w", i+1, err)
		}
		fetched := b.FetchedAt
		if fetched.IsZero() || fetched.After(now) {
			fetched = now
		}
		rec := &record{Body: b.Body, Chain: []byte(b.Chain), FetchedAt: fetched}
		if es[i], err = s.newEntry(k, rec, now); err != nil {
			return ImportResult{}, fmt.Errorf("bundle entry %d (%s): %w", i+1, k.what(), err)
		}
	}
	var res ImportResult
	for _, e := range es {
		held := s.held(ctx, e.key, now, func(*entry) bool { return false })
		if held != nil && !e.newer(held) && held.issued.After(e.issued) {
			res.Kept++
			continue
		}
		s.mem.Put(e.key, e)
		s.tiers.Persist(ctx, e.key.name(), e.rec, e.next.Sub(now))
		res.Stored++
	}
	return res, nil
}
