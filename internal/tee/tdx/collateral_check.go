package tdx

import (
	"crypto/x509"
	"slices"

	"github.com/trustgate/trustgate/internal/attest"
)

// Verify checks every document of c under roots as a Verifier does before
// it reads them (the verdicts on TCB infos and QE identities are
// remembered): each TCB info and QE identity is signed over its exact
// bytes by a TCB signing certificate (of c.Certs or roots.TCBSigning) that
// the root signed; each CRL is signed by the root or by a CA certificate of
// c.Certs (a PCK CA of an issuer chain) that the root signed. Dates are not
// judged here. Errors are collateral_invalid. A collateral service calls it
// before it keeps anything it fetched; nil roots means IntelRoots().
func (c *Collateral) Verify(roots *Roots) error {
	if roots == nil {
		roots = IntelRoots()
	}
	root := roots.Root
	signers := append(c.Certs[:len(c.Certs):len(c.Certs)], roots.TCBSigning...)
	for _, ti := range c.TCBInfos {
		if _, err := ti.verify(signers, root); err != nil {
			return attest.Errorf(attest.ReasonCollateralInvalid, "TCB info for FMSPC %s: %w", ti.FMSPC, err)
		}
	}
	for _, qe := range c.QEIdentities {
		if _, err := qe.verify(signers, root); err != nil {
			return attest.Errorf(attest.ReasonCollateralInvalid, "QE identity: %w", err)
		}
	}
	issuers := []*x509.Certificate{root}
	for _, cert := range c.Certs {
		if cert.IsCA && !cert.Equal(root) && cert.CheckSignatureFrom(root) == nil {
			issuers = append(issuers, cert)
		}
	}
	for _, crl := range c.CRLs {
		if !slices.ContainsFunc(issuers, func(is *x509.Certificate) bool { return c.crlSignedBy(crl, is) }) {
			return attest.Errorf(attest.ReasonCollateralInvalid, "a CRL issued by %q is signed neither by the root nor by a CA the root signed", crl.Issuer.CommonName)
		}
	}
	return nil
}

// FMSPCBytes is the TCB info's FMSPC as bytes (its hex's case does not
// matter).
func (t *TCBInfo) FMSPCBytes() [6]byte { return t.fmspc }

// MergeCollateral returns one Collateral holding the documents of every
// one of cs; documents are shared, not copied, so what was verified of
// them stays verified.
func MergeCollateral(cs ...*Collateral) *Collateral {
	out := &Collateral{}
	for _, c := range cs {
		out.TCBInfos = append(out.TCBInfos, c.TCBInfos...)
		out.QEIdentities = append(out.QEIdentities, c.QEIdentities...)
		out.CRLs = append(out.CRLs, c.CRLs...)
		out.Certs = append(out.Certs, c.Certs...)
	}
	return out
}
