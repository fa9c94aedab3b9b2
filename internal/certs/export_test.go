package certs

import (
	"context"
	"time"

	"github.com/trustgate/trustgate/internal/fetch"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/tiered"
)

// HeldIn lists the tiers ("memory", "disk", "redis") that hold the VCEK
// of req.
func HeldIn(ctx context.Context, s *Service, req snp.KeyRequest) []string {
	k := makeVKey(req)
	var in []string
	if _, ok := s.mem.Get(k); ok {
		in = append(in, "memory")
	}
	for _, t := range s.tiers.Stores {
		if rec, err := t.Get(ctx, k.name()); err == nil && rec != nil {
			in = append(in, t.Kind())
		}
	}
	return in
}

// ParseRetryAfter is the parse the KDS client uses.
var ParseRetryAfter = fetch.ParseRetryAfter

// KeyName is the tier key of req's VCEK.
func KeyName(req snp.KeyRequest) string { return makeVKey(req).name() }

// The refusals of lookups, for errors.Is.
var (
	ErrBusy           = tiered.ErrBusy
	ErrTooManyWaiting = tiered.ErrTooManyWaiting
	ErrClientBusy     = tiered.ErrClientBusy
	ErrClientWaiting  = tiered.ErrClientWaiting
	ErrStillRunning   = tiered.ErrStillRunning
	ErrClientBudget   = errClientBudget
	ErrNonceSpent     = errNonceSpent
)

// Fetching returns how many VCEK fetches are in flight.
func Fetching(s *Service) int { return s.vflights.Running() }

// Waiting returns how many lookups wait for VCEK fetches.
func Waiting(s *Service) int { return s.vflights.Waiting() }

// HeldBack returns how long VCEK and other KDS requests are held back by
// a Retry-After.
func HeldBack(s *Service) (vcek, other time.Duration) {
	return s.kds.vcekLim.HeldBack(), s.kds.otherLim.HeldBack()
}

// ParseCRL verifies der as the p VCEK CRL at now, as one from the KDS or a
// tier is (the fuzz target's way in).
func ParseCRL(s *Service, p snp.Product, der []byte, now time.Time) (thisUpdate, nextUpdate time.Time, err error) {
	c, err := s.parseCRL(crlKey{p, snp.SignerVCEK}, &record{DER: der, FetchedAt: now}, now)
	if err != nil {
		return time.Time{}, time.Time{}, err
	}
	return c.thisUpdate, c.nextUpdate, nil
}
