package certs

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"slices"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/snp"
)

// ExportOptions shapes Export. The zero value exports the VCEK chain and
// CRL of every product a key belongs to.
type ExportOptions struct {
	// Chains adds chains and CRLs, e.g. VLEK ones (VLEKs themselves come
	// with the evidence, not from the KDS).
	Chains []ChainRef
	// NoCRLs leaves the CRLs out (a verifier that checks revocation then
	// needs them from elsewhere).
	NoCRLs bool
}

// Export builds a bundle of the VCEKs of keys and the chains and CRLs of
// the products they belong to (and of o.Chains), getting each as
// EndorsementKey and Check would: from the tiers, else the KDS. What could
// be had is returned even when some could not (err joins those failures).
func (s *Service) Export(ctx context.Context, keys []snp.KeyRequest, o ExportOptions) (*Bundle, error) {
	refs := slices.Clone(o.Chains)
	b := &Bundle{Format: BundleFormat, Created: s.now().UTC()}
	var errs []error
	for _, req := range keys {
		e, err := s.entry(ctx, req, time.Time{})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.VCEKs = append(b.VCEKs, BundleVCEK{Product: req.Product, HWID: hex.EncodeToString(req.HWID),
			TCB: fmt.Sprintf("%016x", uint64(req.TCB)), FetchedAt: e.FetchedAt.UTC(), DER: e.der})
		if r := (ChainRef{req.Product, snp.SignerVCEK}); !slices.Contains(refs, r) {
			refs = append(refs, r)
		}
	}
	for _, r := range refs {
		pemBytes, err := s.CertChain(ctx, r.Product, r.Signer)
		if err != nil {
			errs = append(errs, err)
		} else {
			b.Chains = append(b.Chains, BundleChain{Product: r.Product, Signer: r.Signer, PEM: string(pemBytes)})
		}
		if o.NoCRLs {
			continue
		}
		c, err := s.crl(ctx, crlKey{r.Product, r.Signer}, time.Time{})
		if err != nil {
			errs = append(errs, err)
			continue
		}
		b.CRLs = append(b.CRLs, BundleCRL{Product: r.Product, Signer: r.Signer, FetchedAt: c.FetchedAt.UTC(), DER: c.der})
	}
	return b, errors.Join(errs...)
}

// CertChain returns a product's KDS cert_chain (PEM: ASK or ASVK, then
// ARK). Online it is fetched and must be byte-identical to the pinned
// certificates; offline the pinned ones are returned.
func (s *Service) CertChain(ctx context.Context, p snp.Product, sg snp.Signer) ([]byte, error) {
	pr, ok := s.roots.Product(p)
	if !ok {
		return nil, attest.Errorf(attest.ReasonCertChainInvalid, "no pinned roots for %s", p)
	}
	ica := pr.ASK
	if sg == snp.SignerVLEK {
		ica = pr.ASVK
	}
	if ica == nil {
		return nil, attest.Errorf(attest.ReasonCertChainInvalid, "no pinned %s intermediate for %s", sg, p)
	}
	if s.offline {
		var buf bytes.Buffer
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: ica.Raw})
		pem.Encode(&buf, &pem.Block{Type: "CERTIFICATE", Bytes: pr.ARK.Raw})
		return buf.Bytes(), nil
	}
	what := string(p) + " " + signerPath(sg) + " cert_chain"
	body, err := s.kds.get(ctx, KindCertChain, what, CertChainURL(s.base, p, sg), maxCertSize)
	if err != nil {
		return nil, attest.WithReason(attest.ReasonVCEKUnavailable, "", err)
	}
	if err := checkChain(body, ica.Raw, pr.ARK.Raw); err != nil {
		return nil, attest.Errorf(attest.ReasonCertChainInvalid, "KDS %s: %w", what, err)
	}
	return body, nil
}

func checkChain(pemBytes, ica, ark []byte) error {
	gotICA, gotARK, err := snp.ParseCertChain(pemBytes)
	if err != nil {
		return err
	}
	if !bytes.Equal(gotICA.Raw, ica) || !bytes.Equal(gotARK.Raw, ark) {
		return errors.New("not the pinned intermediate and ARK")
	}
	return nil
}
