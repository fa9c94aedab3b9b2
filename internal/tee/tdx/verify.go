package tdx

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"math/big"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/lru"
)

// Evidence is one TDX quote.
type Evidence struct {
	// Quote is a version 4 or 5 quote; bytes after its end are ignored.
	Quote []byte
}

// Options configures a Verifier. The zero value verifies against the pinned
// Intel SGX Root CA at the current time, never touches the network, refuses
// debuggable TDs, and — having no collateral — refuses every quote with
// collateral_unavailable.
type Options struct {
	// Roots are the trust anchors; nil means IntelRoots().
	Roots *Roots
	// Collateral supplies Intel's TCB info, QE identity and CRLs; nil
	// means none is at hand (collateral_unavailable), unless NoCollateral.
	Collateral CollateralSource
	// NoCollateral verifies signatures, the QE binding and the PCK chain
	// only: no TCB status, QE identity or CRL is checked and the claims
	// carry no tcb_status. Dangerous: a revoked or out-of-date platform
	// verifies.
	NoCollateral bool
	// Now returns the time at which certificates, CRLs and collateral are
	// judged; nil means time.Now.
	Now func() time.Time
	// CacheSize bounds the verified PCK-chain cache; 0 means
	// DefaultCacheSize.
	CacheSize int
	// AllowDebug accepts debuggable TDs (TD_ATTRIBUTES bits 0–7, the TUD
	// field, DEBUG its bit 0). Dangerous: the host can read and change a
	// debuggable TD's memory.
	AllowDebug bool
}

// DefaultCacheSize is the number of verified PCK chains a Verifier
// remembers when Options.CacheSize is 0. One entry is a few KiB.
const DefaultCacheSize = 1024

// Verifier verifies TDX quotes. It is safe for concurrent use.
type Verifier struct {
	roots        *Roots
	collateral   CollateralSource
	noCollateral bool
	now          func() time.Time
	allowDebug   bool
	chains       *lru.Cache[[sha256.Size]byte, *pckEntry]
}

// New returns a Verifier with the given options.
func New(o Options) *Verifier {
	v := &Verifier{roots: o.Roots, collateral: o.Collateral, noCollateral: o.NoCollateral, now: o.Now, allowDebug: o.AllowDebug}
	if v.roots == nil {
		v.roots = IntelRoots()
	}
	if v.now == nil {
		v.now = time.Now
	}
	n := o.CacheSize
	if n <= 0 {
		n = DefaultCacheSize
	}
	v.chains = lru.New[[sha256.Size]byte, *pckEntry](n)
	return v
}

// Verify checks that ev.Quote was made by a genuine Intel TDX platform —
// its PCK chain to the pinned root, the QE report signed by the PCK key and
// binding the attestation key, the quote signed by that key — and, with
// collateral, that Intel's TCB info, QE identity and CRLs vouch for it at
// the time of judgement; then the safety floor (not debuggable). It returns
// the claims. Every rejection is an *attest.Error.
func (v *Verifier) Verify(ctx context.Context, ev Evidence) (*attest.TDXClaims, error) {
	f, err := frame(ev.Quote)
	if err != nil {
		return nil, err
	}
	if f.size > MaxQuoteSize {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "quote is %d bytes, limit %d", f.size, MaxQuoteSize)
	}
	at := v.now()

	// Endorsement: the PCK chain to the pinned root.
	pck, err := v.verifyPCKChain(f.pckChain, at)
	if err != nil {
		return nil, err
	}
	// Signatures: the QE report by the PCK key, the QE report binding the
	// attestation key, the quote by the attestation key.
	if !verifyP256(pck.key, f.qeReport, f.qeSig) {
		return nil, attest.Errorf(attest.ReasonSignatureInvalid, "QE report signature does not verify under the PCK key")
	}
	h := sha256.New()
	h.Write(f.attKey)
	h.Write(f.qeAuth)
	var bind [64]byte
	h.Sum(bind[:0])
	if !bytes.Equal(f.qeReport[qeOffReportData:qeOffReportData+64], bind[:]) {
		return nil, attest.Errorf(attest.ReasonSignatureInvalid, "QE report data is not SHA-256(attestation key ‖ QE authentication data)")
	}
	attKey, err := p256Key(f.attKey)
	if err != nil {
		return nil, attest.Errorf(attest.ReasonSignatureInvalid, "attestation key: %w", err)
	}
	if !verifyP256(attKey, f.signed, f.sig) {
		return nil, attest.Errorf(attest.ReasonSignatureInvalid, "quote signature does not verify under the attestation key")
	}
	// From here on the quote's signed bytes are Intel's platform's.
	claims, err := tdClaims(f)
	if err != nil {
		return nil, err
	}
	claims.FMSPC = attest.Hex(pck.info.FMSPC[:])
	if pck.info.PPID != ([16]byte{}) {
		claims.PlatformID = attest.Hex(pck.info.PPID[:]) // for launch tracking (internal/launch) only
	}

	if !v.noCollateral {
		res, err := v.appraise(ctx, f, pck, at)
		if err != nil {
			return nil, err
		}
		claims.TCBStatus, claims.AdvisoryIDs = res.status, res.advisories
	}
	if tud := f.body[offTDAttributes]; tud != 0 && !v.allowDebug {
		return nil, attest.Errorf(attest.ReasonDebugEnabled, "TD_ATTRIBUTES.TUD is %#02x: the TD is debuggable", tud)
	}
	return claims, nil
}

// appraise checks the quote against Intel's collateral: CRLs of the PCK's
// CA and of the root, the TCB info and QE identity (signatures, dates,
// FMSPC, PCE-ID), the QE's identity, and the TCB level.
func (v *Verifier) appraise(ctx context.Context, f *framed, pck *pckEntry, at time.Time) (*tcbResult, error) {
	if v.collateral == nil {
		return nil, attest.Errorf(attest.ReasonCollateralUnavailable, "no Intel collateral (TCB info, QE identity, CRLs) is at hand")
	}
	col, err := v.collateral.Collateral(ctx, CollateralRequest{FMSPC: pck.info.FMSPC, CA: pck.info.CA})
	if err != nil {
		return nil, attest.WithReason(attest.ReasonCollateralUnavailable, "collateral", err)
	}
	root := v.roots.Root

	// Revocation of the PCK, its CA, and (below) the TCB signing cert.
	rootCRL, err := col.crlFor(root, at)
	if err != nil {
		return nil, err
	}
	pckCRL, err := col.crlFor(pck.ca, at)
	if err != nil {
		return nil, err
	}
	if revoked(pckCRL, pck.leaf) {
		return nil, attest.Errorf(attest.ReasonCertRevoked, "the PCK certificate is revoked by %q", pck.ca.Subject.CommonName)
	}
	if revoked(rootCRL, pck.ca) {
		return nil, attest.Errorf(attest.ReasonCertRevoked, "%q is revoked by the root", pck.ca.Subject.CommonName)
	}

	ti := col.tcbInfo(pck.info.FMSPC, at)
	if ti == nil {
		return nil, errNoTCBInfo(pck.info.FMSPC)
	}
	if ti.ID != "TDX" || ti.Version != 3 || ti.TCBType != 0 {
		return nil, attest.Errorf(attest.ReasonCollateralInvalid, "TCB info is %q version %d type %d, want \"TDX\" version 3 type 0", ti.ID, ti.Version, ti.TCBType)
	}
	if ti.pceID != pck.info.PCEID {
		return nil, attest.Errorf(attest.ReasonCollateralInvalid, "TCB info is for PCE-ID %x, the PCK's is %x", ti.pceID, pck.info.PCEID)
	}
	qe := col.qeIdentity(at)
	if qe == nil {
		return nil, attest.Errorf(attest.ReasonCollateralUnavailable, "no QE identity in the collateral")
	}
	if qe.ID != "TD_QE" || qe.Version != 2 {
		return nil, attest.Errorf(attest.ReasonCollateralInvalid, "QE identity is %q version %d, want \"TD_QE\" version 2", qe.ID, qe.Version)
	}
	signers := append(col.Certs[:len(col.Certs):len(col.Certs)], v.roots.TCBSigning...)
	for _, d := range []struct {
		what        string
		doc         *signedDoc
		issue, next time.Time
	}{{"TCB info", &ti.signedDoc, ti.IssueDate, ti.NextUpdate}, {"QE identity", &qe.signedDoc, qe.IssueDate, qe.NextUpdate}} {
		certs, err := d.doc.verify(signers, root)
		if err != nil {
			return nil, attest.Errorf(attest.ReasonCollateralInvalid, "%s: %w", d.what, err)
		}
		if err := signerAt(d.what, certs, rootCRL, at); err != nil {
			return nil, err
		}
		if err := current(d.what, d.issue, d.next, at); err != nil {
			return nil, err
		}
	}
	if err := checkQEIdentity(qe, f.qeReport); err != nil {
		return nil, err
	}
	return matchTCB(ti, qe, pck.info, f, binary.LittleEndian.Uint16(f.qeReport[qeOffISVSVN:]))
}

// signerAt checks that one of the certificates that signed a document is
// valid at time at and not revoked by the root's CRL.
func signerAt(what string, certs []*x509.Certificate, rootCRL *x509.RevocationList, at time.Time) error {
	var err error
	for _, c := range certs {
		switch {
		case at.Before(c.NotBefore) || at.After(c.NotAfter):
			err = attest.Errorf(attest.ReasonCollateralInvalid, "%s: its signing certificate is valid %s to %s, not at %s", what,
				c.NotBefore.Format(time.RFC3339), c.NotAfter.Format(time.RFC3339), at.Format(time.RFC3339))
		case revoked(rootCRL, c):
			err = attest.Errorf(attest.ReasonCertRevoked, "%s: its signing certificate is revoked by the root", what)
		default:
			return nil
		}
	}
	return err
}

// checkQEIdentity checks that the QE that signed the quote is Intel's TD QE
// (QVL EnclaveIdentity check): MRSIGNER, ISVPRODID, and MISCSELECT and
// ATTRIBUTES under their masks.
func checkQEIdentity(qe *QEIdentity, report []byte) error {
	bad := func(what string) error {
		return attest.Errorf(attest.ReasonCertChainInvalid, "the QE is not Intel's TD QE: %s differs from the QE identity", what)
	}
	if len(qe.MRSigner) != 32 || len(qe.MiscSelect) != 4 || len(qe.MiscSelectMask) != 4 || len(qe.Attributes) != 16 || len(qe.AttributesMask) != 16 {
		return attest.Errorf(attest.ReasonCollateralInvalid, "QE identity: a field has the wrong size")
	}
	if !bytes.Equal(report[qeOffMRSigner:qeOffMRSigner+32], qe.MRSigner) {
		return bad("MRSIGNER")
	}
	if int(binary.LittleEndian.Uint16(report[qeOffISVProdID:])) != qe.ISVProdID {
		return bad("ISVPRODID")
	}
	// MISCSELECT is a little-endian u32 in the report; Intel writes the
	// identity's as big-endian hex.
	misc := binary.LittleEndian.Uint32(report[qeOffMiscSelect:])
	if misc&binary.BigEndian.Uint32(qe.MiscSelectMask) != binary.BigEndian.Uint32(qe.MiscSelect) {
		return bad("MISCSELECT")
	}
	attrs := report[qeOffAttributes : qeOffAttributes+16]
	for i := range attrs {
		if attrs[i]&qe.AttributesMask[i] != qe.Attributes[i] {
			return bad("ATTRIBUTES")
		}
	}
	return nil
}

// verifyP256 checks a raw r ‖ s ECDSA P-256 signature over SHA-256(msg).
func verifyP256(key *ecdsa.PublicKey, msg, sig []byte) bool {
	digest := sha256.Sum256(msg)
	r, s := new(big.Int).SetBytes(sig[:32]), new(big.Int).SetBytes(sig[32:64])
	return ecdsa.Verify(key, digest[:], r, s)
}

// p256Key parses an X ‖ Y P-256 point, refusing points off the curve.
func p256Key(xy []byte) (*ecdsa.PublicKey, error) {
	return ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append([]byte{4}, xy...))
}
