package certs

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/trustgate/trustgate/internal/tee/snp"
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
	if len(s.tiers) == 0 {
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
			errs = append(errs, fmt.Errorf("chain %d (%s %s): %v", i, c.Product, c.Signer, err))
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
			errs = append(errs, fmt.Errorf("VCEK %d: %v", i, err))
			continue
		}
		k := makeVKey(req)
		rec := &record{DER: v.DER, FetchedAt: v.FetchedAt}
		if rec.FetchedAt.IsZero() {
			rec.FetchedAt = b.Created
		}
		e, err := s.newEntry(k, rec, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("VCEK %d (%s): %v", i, v.Product, err))
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
		rec := &record{DER: c.DER, FetchedAt: c.FetchedAt}
		if rec.FetchedAt.IsZero() {
			rec.FetchedAt = b.Created
		}
		st, err := s.parseCRL(k, rec, now)
		if err != nil {
			errs = append(errs, fmt.Errorf("CRL %d (%s): %v", i, k, err))
			continue
		}
		if now.After(st.usableTill) {
			errs = append(errs, fmt.Errorf("CRL %d (%s): past nextUpdate %s plus the %s grace", i, k, st.nextUpdate.Format(time.RFC3339), s.crlGrace))
			continue
		}
		crls = append(crls, crlIn{k, rec, st})
	}
	if err := errors.Join(errs...); err != nil {
		return res, fmt.Errorf("bundle refused, nothing imported: %w", err)
	}
	for _, v := range vceks {
		if err := s.putAll(ctx, v.k.name(), v.rec, v.e.notAfter.Sub(now)); err != nil {
			return res, err
		}
		s.mem.Put(v.e.key, v.e)
		s.neg.del(v.k)
		res.VCEKs++
	}
	for _, c := range crls {
		cur := s.heldCRL(ctx, c.k, now)
		if cur != nil && cur.newer(c.c) {
			res.Kept++
			continue
		}
		if err := s.putAll(ctx, c.k.name(), c.rec, c.c.usableTill.Sub(now)); err != nil {
			return res, err
		}
		s.crls[c.k].Store(c.c)
		res.CRLs++
	}
	return res, nil
}

// heldCRL returns the newest CRL held in memory or the tiers, without
// asking the KDS; nil if none.
func (s *Service) heldCRL(ctx context.Context, k crlKey, now time.Time) *crlState {
	best := s.crls[k].Load()
	for _, t := range s.tiers {
		rec, err := t.get(ctx, k.name())
		if err != nil || rec == nil {
			continue
		}
		if c, err := s.parseCRL(k, rec, now); err == nil && c.newer(best) {
			best = c
		}
	}
	return best
}
