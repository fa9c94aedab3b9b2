package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"math/big"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/tiered"
)

// crlSkew is how far in the future a CRL's thisUpdate may lie (clock
// skew between AMD and this host).
const crlSkew = 5 * time.Minute

// crlKey names one of AMD's CRLs: /vcek/v1/{product}/crl covers the ASK,
// /vlek/v1/{product}/crl the ASVK (VCEK spec 57230 ch. 4).
type crlKey struct {
	product snp.Product
	signer  snp.Signer
}

func (k crlKey) name() string { return "crl/" + signerPath(k.signer) + "-" + string(k.product) }

func (k crlKey) String() string { return string(k.product) + " " + signerPath(k.signer) + " CRL" }

func (k crlKey) url(base string) string { return CRLURL(base, k.product, k.signer) }

// crlState is a verified CRL, parsed once, its serials in maps so that
// Check costs a map lookup (and nothing when the CRL is empty, as AMD's
// are in practice).
type crlState struct {
	der             []byte
	number          *big.Int
	tiered.Lifetime // UsableTill: nextUpdate + CRLGrace
	thisUpdate      time.Time
	nextUpdate      time.Time
	small           map[uint64]struct{}
	big             map[string]struct{}
}

func (c *crlState) empty() bool { return len(c.small) == 0 && len(c.big) == 0 }

func (c *crlState) revoked(serial *big.Int) bool {
	if serial == nil || c.empty() {
		return false
	}
	if serial.Sign() >= 0 && serial.IsUint64() {
		_, ok := c.small[serial.Uint64()]
		return ok
	}
	_, ok := c.big[serial.String()]
	return ok
}

// newer reports whether c was issued after o (CRL number, else thisUpdate).
func (c *crlState) newer(o *crlState) bool {
	if o == nil {
		return true
	}
	if c.number != nil && o.number != nil {
		return c.number.Cmp(o.number) > 0
	}
	return c.thisUpdate.After(o.thisUpdate)
}

// parseCRL verifies a CRL for k: issued and signed by the pinned ARK of
// its product (the ASK and ASVK cannot sign CRLs), with a nextUpdate, and
// issued no later than now. Whether it is past nextUpdate is left to the
// caller.
func (s *Service) parseCRL(k crlKey, rec *record, now time.Time) (*crlState, error) {
	l, err := x509.ParseRevocationList(rec.DER)
	if err != nil {
		return nil, fmt.Errorf("not a CRL: %w", err)
	}
	pr, ok := s.roots.Product(k.product)
	if !ok || pr.ARK == nil {
		return nil, fmt.Errorf("no pinned %s ARK", k.product)
	}
	if !bytes.Equal(l.RawIssuer, pr.ARK.RawSubject) {
		return nil, fmt.Errorf("issued by %q, not by the pinned %s ARK", l.Issuer.CommonName, k.product)
	}
	if err := l.CheckSignatureFrom(pr.ARK); err != nil {
		return nil, fmt.Errorf("not signed by the pinned %s ARK: %w", k.product, err)
	}
	if l.NextUpdate.IsZero() || !l.NextUpdate.After(l.ThisUpdate) {
		return nil, errors.New("no nextUpdate after its thisUpdate")
	}
	// Issued in the future by the later of the service's clock and this
	// host's wall clock: verify --at judges certificates at an earlier
	// time, and a CRL newer than that time only knows more.
	if l.ThisUpdate.After(later(now, time.Now()).Add(crlSkew)) {
		return nil, fmt.Errorf("%w: issued in the future (thisUpdate %s)", tiered.ErrNotNow, l.ThisUpdate.Format(time.RFC3339))
	}
	c := &crlState{der: rec.DER, number: l.Number, thisUpdate: l.ThisUpdate, nextUpdate: l.NextUpdate,
		small: map[uint64]struct{}{}, big: map[string]struct{}{}}
	c.Set(rec.FetchedAt, now, l.NextUpdate, s.frac, 0, func(time.Time) time.Time {
		if s.crlGrace > 0 {
			return l.NextUpdate.Add(s.crlGrace)
		}
		return l.NextUpdate
	})
	for _, e := range l.RevokedCertificateEntries {
		if sn := e.SerialNumber; sn.Sign() >= 0 && sn.IsUint64() {
			c.small[sn.Uint64()] = struct{}{}
		} else {
			c.big[sn.String()] = struct{}{}
		}
	}
	return c, nil
}

// crl returns a usable CRL for k, loading or fetching it (coalesced) when
// the one in memory is missing or past its refresh point, waiting for the
// fetch until until (zero: until it ends). Errors are *attest.Error with
// reason vcek_unavailable.
func (s *Service) crl(ctx context.Context, k crlKey, until time.Time) (*crlState, error) {
	if s.crls[k] == nil {
		return nil, attest.Errorf(attest.ReasonVCEKUnavailable, "no CRL is known for %s", k)
	}
	c, err := s.cflights.Do(ctx, k, tiered.Join{Until: until}, s.run.FetchContext, func(fctx context.Context) (*crlState, error) {
		return s.resolveCRL(fctx, k)
	})
	if err != nil {
		return nil, attest.WithReason(attest.ReasonVCEKUnavailable, k.String(), err)
	}
	return c, nil
}

// heldCRL returns the newest verified CRL for k in memory and the
// persistent tiers (nil if none), without asking the KDS: it reads the
// tiers in order until enough(the newest so far) holds. A record that
// does not verify is dropped from its tier (see tiered.Tiers.Walk).
func (s *Service) heldCRL(ctx context.Context, k crlKey, now time.Time, enough func(*crlState) bool) *crlState {
	return tiered.Newest(ctx, s.tiers, k.name(), k.String(), s.crls[k].Load(),
		func(rec *record) (*crlState, error) { return s.parseCRL(k, rec, now) }, (*crlState).newer, enough)
}

// resolveCRL takes the newest verified CRL from memory and the tiers and,
// unless it is before its refresh point, asks the KDS. A CRL older than
// the one held is never taken (no rollback). The result is usable at now,
// or an error.
func (s *Service) resolveCRL(ctx context.Context, k crlKey) (*crlState, error) {
	ptr := s.crls[k]
	now := s.now()
	best := s.heldCRL(ctx, k, now, func(c *crlState) bool { return c.State(now) == tiered.Fresh })
	var err error
	if best != nil && best.State(now) == tiered.Fresh {
		ptr.Store(best)
		return best, nil
	}
	if s.offline {
		err = fmt.Errorf("offline and no current %s cached or imported", k)
	} else {
		var der []byte
		if der, err = s.kds.get(ctx, KindCRL, k.String(), k.url(s.base), maxCRLSize); err == nil {
			rec := &record{DER: der, FetchedAt: s.now()}
			var c *crlState
			if c, err = s.parseCRL(k, rec, rec.FetchedAt); err == nil {
				if best != nil && best.newer(c) {
					err = fmt.Errorf("KDS served a %s older than the one held", k)
				} else {
					ptr.Store(c)
					s.tiers.Persist(ctx, k.name(), rec, c.UsableTill.Sub(rec.FetchedAt))
					return c, nil
				}
			} else {
				err = fmt.Errorf("KDS served an invalid %s: %w", k, err)
			}
		}
	}
	now = s.now()
	if best != nil && best.State(now) != tiered.Expired {
		ptr.Store(best)
		s.log.Warn("using a CRL that could not be refreshed", "crl", k.String(), "next_update", best.nextUpdate.Format(time.RFC3339),
			"usable_until", best.UsableTill.Format(time.RFC3339), "error", err.Error())
		return best, nil
	}
	if best != nil {
		err = fmt.Errorf("%w; the %s held is past nextUpdate %s plus the %s grace", err, k, best.nextUpdate.Format(time.RFC3339), s.crlGrace)
	}
	return nil, attest.Errorf(attest.ReasonVCEKUnavailable, "revocation cannot be checked: %w", err)
}

func later(a, b time.Time) time.Time {
	if a.After(b) {
		return a
	}
	return b
}
