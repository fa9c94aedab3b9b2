package certs

import (
	"bytes"
	"context"
	"crypto/x509"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/tiered"
)

// Check implements snp.RevocationChecker: it fails with cert_revoked when
// AMD's CRL for the chain (the product's VCEK CRL for an ASK chain, its VLEK
// CRL for an ASVK chain) lists the intermediate's or the endorsement key's
// serial, and then purges the key (or, for a revoked intermediate, every
// VCEK of the product) from every tier. The CRL must be signed by the
// pinned ARK; it is refreshed in the background from its refresh point on
// and used until nextUpdate + CRLGrace; past that, or when no CRL could be
// had at all, Check fails closed with vcek_unavailable (SPEC: the
// dependency-unavailable code; exit 3, HTTP 503).
//
// Note that AMD issues every VCEK and VLEK with serial 0: a CRL entry for
// serial 0 revokes every endorsement key of its product.
func (s *Service) Check(ctx context.Context, p snp.Product, sg snp.Signer, intermediate, endorsementKey *x509.Certificate) error {
	if intermediate == nil || endorsementKey == nil {
		return attest.Errorf(attest.ReasonInternalError, "revocation check without a certificate")
	}
	k := crlKey{p, sg}
	ptr := s.crls[k]
	if ptr == nil {
		return attest.Errorf(attest.ReasonCertChainInvalid, "no CRL is known for %s %s chains", p, sg)
	}
	if !s.pinned(k, intermediate) {
		if s.skipPin {
			return nil
		}
		return attest.Errorf(attest.ReasonCertChainInvalid, "the %s intermediate is not AMD's pinned one; no AMD CRL covers it", k.product)
	}
	now := s.now()
	c := ptr.Load()
	if c == nil || c.State(now) == tiered.Expired {
		var err error
		if c, err = s.crl(ctx, k, s.waitUntil(ctx)); err != nil {
			return err
		}
		if now = s.now(); c.State(now) == tiered.Expired {
			return attest.Errorf(attest.ReasonVCEKUnavailable, "revocation cannot be checked: the %s is past nextUpdate %s plus the %s grace",
				k, c.nextUpdate.Format(time.RFC3339), s.crlGrace)
		}
	} else if c.State(now) == tiered.Stale {
		s.run.RefreshLater(&c.Lifetime, now, func(ctx context.Context) { s.crl(ctx, k, time.Time{}) })
	}
	if c.empty() {
		return nil
	}
	if c.revoked(intermediate.SerialNumber) {
		s.log.Warn("AMD CRL revokes the intermediate; purging every cached VCEK of the product", "product", string(p), "signer", string(sg),
			"serial", intermediate.SerialNumber.String())
		if sg == snp.SignerVCEK {
			s.purgeProduct(ctx, p)
		}
		return attest.Errorf(attest.ReasonCertRevoked, "%s intermediate %s (serial %s) is revoked by AMD's CRL", p, intermediate.Subject.CommonName, intermediate.SerialNumber)
	}
	if c.revoked(endorsementKey.SerialNumber) {
		s.log.Warn("AMD CRL revokes an endorsement key; purging it", "product", string(p), "signer", string(sg), "serial", endorsementKey.SerialNumber.String())
		s.purgeKey(ctx, endorsementKey)
		return attest.Errorf(attest.ReasonCertRevoked, "%s %s (serial %s) is revoked by AMD's CRL", p, sg, endorsementKey.SerialNumber)
	}
	return nil
}

// pinned reports whether ica is the pinned intermediate of k.
func (s *Service) pinned(k crlKey, ica *x509.Certificate) bool {
	pr, ok := s.roots.Product(k.product)
	if !ok {
		return false
	}
	want := pr.ASK
	if k.signer == snp.SignerVLEK {
		want = pr.ASVK
	}
	return want != nil && (want == ica || bytes.Equal(want.Raw, ica.Raw))
}

// purgeKey removes a revoked VCEK from every tier.
func (s *Service) purgeKey(ctx context.Context, cert *x509.Certificate) {
	ek, err := snp.ParseEndorsementKey(cert)
	if err != nil || ek.Signer != snp.SignerVCEK {
		return // VLEKs are never cached
	}
	k := makeVKey(snp.KeyRequest{Product: ek.Product, Signer: snp.SignerVCEK, HWID: ek.HWID, TCB: ek.TCB})
	s.mem.Remove(k)
	for _, t := range s.tiers.Stores {
		if err := t.Del(ctx, k.name()); err != nil {
			s.log.Warn("could not purge a revoked VCEK from a tier", "tier", t.Kind(), "error", err.Error())
		}
	}
}

// purgeProduct removes every VCEK of p from every tier.
func (s *Service) purgeProduct(ctx context.Context, p snp.Product) {
	s.mem.RemoveIf(func(k vkey) bool { return k.product == p })
	for _, t := range s.tiers.Stores {
		if err := t.DelPrefix(ctx, productPrefix(p)); err != nil {
			s.log.Warn("could not purge revoked VCEKs from a tier", "tier", t.Kind(), "error", err.Error())
		}
	}
}
