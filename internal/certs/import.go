package certs

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/tiered"
)

// ImportResult counts what Import stored.
type ImportResult struct {
	VCEKs, CRLs int
	// Kept counts CRLs not imported because a newer one was held.
	Kept int
}

// Import verifies everything in b and stores it in every persistent tier
// (disk, Redis) and in memory. It refuses the whole bundle, storing
// nothing, if any part does not verify at the Service's clock: a VCEK not
// signed by the pinned ASK, not for the chip and TCB it is filed under, or
// expired; a CRL not signed by the pinned ARK or past nextUpdate plus
// CRLGrace; a chain that is not the pinned one.
func (s *Service) Import(ctx context.Context, b *Bundle) (ImportResult, error) {
	var res ImportResult
	if b.Format != BundleFormat {
		return res, fmt.Errorf("bundle format %q, want %q", b.Format, BundleFormat)
	}
	if len(s.tiers.Stores) == 0 {
		return res, errors.New("no disk or Redis tier to import into")
	}
	now := s.now()
	var errs []error
	for i, c := range b.Chains {
		pr, ok := s.roots.Product(c.Product)
		ica := pr.ASK
		if c.Signer == snp.SignerVLEK {
			ica = pr.ASVK
		}
		if !ok || ica == nil {
			errs = append(errs, fmt.Errorf("chain %d: no pinned %s %s chain", i, c.Product, c.Signer))
			continue
		}
		if err := checkChain([]byte(c.PEM), ica.Raw, pr.ARK.Raw); err != nil {
			errs = append(errs, fmt.Errorf("chain %d (%s %s): %w", i, c.Product, c.Signer, err))
		}
	}
	type vcekIn struct {
		k   vkey
		rec *record
		e   *ventry
	}
	var vceks []vcekIn
	for i, v := range b.VCEKs {
		hwid, err := hex.DecodeString(v.HWID)
		if err != nil {
			errs = append(errs, fmt.Errorf("VCEK %d: hwid is not hex", i))
			continue
		}
		tcb, err := strconv.ParseUint(v.TCB, 16, 64)
		if err != nil {
			errs = append(errs, fmt.Errorf("VCEK %d: tcb is not 16 hex digits", i))
			continue
		}
		req := snp.KeyRequest{Product: v.Product, Signer: snp.SignerVCEK, HWID: hwid, TCB: snp.TCBVersion(tcb)}
		if err := checkRequest(req); err != nil {
			errs = append(errs, fmt.Errorf("VCEK %d: %w", i, err))
			continue
		}
		k := makeVKey(req)
		rec := b.record(v.DER, v.FetchedAt)
		e, err := s.newEntry(k, rec, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("VCEK %d (%s): %w", i, v.Product, err))
			continue
		}
		vceks = append(vceks, vcekIn{k, rec, e})
	}
	type crlIn struct {
		k   crlKey
		rec *record
		c   *crlState
	}
	var crls []crlIn
	for i, c := range b.CRLs {
		k := crlKey{c.Product, c.Signer}
		if s.crls[k] == nil {
			errs = append(errs, fmt.Errorf("CRL %d: unknown product or signer %q %q", i, c.Product, c.Signer))
			continue
		}
		rec := b.record(c.DER, c.FetchedAt)
		st, err := s.parseCRL(k, rec, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("CRL %d (%s): %w", i, k, err))
			continue
		}
		if st.State(now) == tiered.Expired {
			errs = append(errs, fmt.Errorf("CRL %d (%s): past nextUpdate %s plus the %s grace", i, k, st.nextUpdate.Format(time.RFC3339), s.crlGrace))
			continue
		}
		crls = append(crls, crlIn{k, rec, st})
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("bundle refused, nothing imported: %w", err)
	}
	for _, v := range vceks {
		if err := s.tiers.PutAll(ctx, v.k.name(), v.rec, v.e.notAfter.Sub(now)); err != nil {
			return res, err
		}
		s.mem.Put(v.e.key, v.e)
		s.neg.del(v.k)
		res.VCEKs++
	}
	for _, c := range crls {
		cur := s.heldCRL(ctx, c.k, now, func(*crlState) bool { return false })
		if cur != nil && cur.newer(c.c) {
			res.Kept++
			continue
		}
		if err := s.tiers.PutAll(ctx, c.k.name(), c.rec, c.c.UsableTill.Sub(now)); err != nil {
			return res, err
		}
		s.crls[c.k].Store(c.c)
		res.CRLs++
	}
	return res, nil
}

// record is what the bundle holds as a tier record: fetched when it says,
// else when the bundle was created.
func (b *Bundle) record(der []byte, fetchedAt time.Time) *record {
	if fetchedAt.IsZero() {
		fetchedAt = b.Created
	}
	return &record{DER: der, FetchedAt: fetchedAt}
}
