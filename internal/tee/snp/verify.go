package snp

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/sha512"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/lru"
)

// Report framing (SEV-SNP ABI 56860, ATTESTATION_REPORT).
const (
	ReportSize      = abi.ReportSize // 1184 bytes
	signedSize      = 0x2A0          // bytes 0x000–0x29F are signed
	sigPaddingStart = signedSize + abi.EcdsaP384Sha384SignatureSize
)

// Evidence is one SEV-SNP report with whatever came with it.
type Evidence struct {
	// Report is the raw ATTESTATION_REPORT, exactly ReportSize bytes.
	Report []byte
	// CertTable is the extended report's GHCB certificate table; nil if none.
	CertTable []byte
	// EndorsementKey is a VCEK or VLEK certificate (DER or PEM) that the
	// caller supplies; consulted after CertTable. nil if none.
	EndorsementKey []byte
	// Chain holds ASK/ASVK/ARK certificates (DER) that came with the
	// evidence. They count only if byte-identical to pinned ones; otherwise
	// they are ignored.
	Chain [][]byte
	// RuntimeData, when non-nil, is data the report binds in REPORT_DATA as
	// SHA-256(RuntimeData) ‖ 32 zero bytes (Azure HCL runtime data).
	RuntimeData []byte
	// Ignored is how many bytes DecodeReport found after the report and
	// dropped; Verify does not read it.
	Ignored int
}

// KeyRequest names the endorsement key a report needs from a KeySource.
type KeyRequest struct {
	Product Product
	Signer  Signer
	// HWID is the KDS hardware id: CHIP_ID (64 bytes), or CHIP_ID[0:8] on
	// Turin (VCEK spec 57230, Turin tables).
	HWID []byte
	// TCB is the report's REPORTED_TCB, the TCB the key is derived for.
	TCB TCBVersion
}

// KeySource fetches endorsement key certificates (DER), typically from the
// AMD KDS. An error means the key is unavailable.
type KeySource interface {
	EndorsementKey(ctx context.Context, req KeyRequest) ([]byte, error)
}

// CertKeySource is a KeySource that holds the certificates it serves
// parsed (internal/certs does): the Verifier takes the parsed certificate
// instead of parsing the DER again. It trusts nothing in it for that: the
// certificate goes through the same chain, validity and extension checks
// as one from the evidence before anything in it is used. The caller
// must not modify the certificate.
type CertKeySource interface {
	KeySource
	EndorsementCert(ctx context.Context, req KeyRequest) (*x509.Certificate, error)
}

// RevocationChecker tells whether a chain that verified has since been
// revoked (AMD's per-product CRLs, VCEK spec 57230 ch. 4).
type RevocationChecker interface {
	// Check returns nil if neither the intermediate (ASK or ASVK) nor the
	// endorsement key is revoked, an *attest.Error with reason cert_revoked
	// if one is, and any other error when revocation cannot be judged (the
	// verification then fails with that error).
	Check(ctx context.Context, p Product, s Signer, intermediate, endorsementKey *x509.Certificate) error
}

// Options configures a Verifier. The zero value verifies against AMD's
// pinned roots at the current time, never touches the network, and refuses
// DEBUG guests.
type Options struct {
	// Roots are the trust anchors; nil means AMDRoots().
	Roots *Roots
	// Keys fetches endorsement keys that the evidence does not carry; nil
	// means none are fetched and such evidence fails with vcek_unavailable.
	Keys KeySource
	// Now returns the time at which certificate validity is judged; nil
	// means time.Now.
	Now func() time.Time
	// Revocation is consulted on every verification, cached chain or not;
	// nil means revocation is not checked.
	Revocation RevocationChecker
	// CacheSize bounds the verified-chain cache; 0 means DefaultCacheSize.
	CacheSize int
	// AllowDebug accepts guests whose policy allows DEBUG. Dangerous: a
	// DEBUG guest's memory can be read and changed by the host.
	AllowDebug bool
}

// Verifier verifies SEV-SNP evidence. It is safe for concurrent use.
type Verifier struct {
	roots      *Roots
	keys       KeySource
	revocation RevocationChecker
	now        func() time.Time
	allowDebug bool
	cache      *lru.Cache[[sha256.Size]byte, *chainEntry] // verified chains by SHA-256 of the endorsement key DER

	evMu    sync.Mutex
	evRoots map[[sha256.Size]byte]*Roots
}

// New returns a Verifier with the given options.
func New(o Options) *Verifier {
	v := &Verifier{roots: o.Roots, keys: o.Keys, revocation: o.Revocation, now: o.Now, allowDebug: o.AllowDebug, cache: lru.New[[sha256.Size]byte, *chainEntry](cacheSize(o.CacheSize)),
		evRoots: make(map[[sha256.Size]byte]*Roots)}
	if v.roots == nil {
		v.roots = AMDRoots()
	}
	if v.now == nil {
		v.now = time.Now
	}
	return v
}

// Verify checks that ev.Report was signed by a genuine AMD endorsement key
// for the chip and TCB it names, that it is well formed and within the
// safety floor, and returns its claims. Every rejection is an *attest.Error.
func (v *Verifier) Verify(ctx context.Context, ev Evidence) (*attest.Claims, error) {
	report := ev.Report
	if len(report) != ReportSize {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "report is %d bytes, want %d", len(report), ReportSize)
	}
	at := v.now()

	ek, err := v.endorsementKey(ctx, ev, at)
	if err != nil {
		return nil, err
	}
	if err := checkSignature(report, ek.Key); err != nil {
		if ek.Signer == SignerVCEK && reportSigner(report) == SignerVCEK && !allZero(report[0x1A0:0x1E0]) && !chipMatches(ek.HWID, report[0x1A0:0x1E0]) {
			// The unverified CHIP_ID only explains the refusal.
			err = attest.Errorf(attest.ReasonOf(err), "%s: the VCEK is for chip %s, the report says chip %s", attest.Detail(err), chipPrefix(ek.HWID), chipPrefix(report[0x1A0:0x1E0]))
		}
		return nil, err
	}
	// From here on the signed bytes are AMD's.
	r, err := decodeSigned(report, ek.Product)
	if err != nil {
		return nil, err
	}
	if err := checkKeyMatchesReport(ek, r); err != nil {
		return nil, err
	}
	if ev.RuntimeData != nil {
		want := sha256.Sum256(ev.RuntimeData)
		var rd [64]byte
		copy(rd[:], want[:])
		if attest.ExpectReportData(&r.claims, rd[:]) != nil {
			return nil, attest.Errorf(attest.ReasonReportDataMismatch, "REPORT_DATA is not SHA-256 of the HCL runtime data")
		}
	}
	if r.claims.Policy.Debug && !v.allowDebug {
		return nil, attest.Errorf(attest.ReasonDebugEnabled, "guest policy allows DEBUG")
	}
	return &r.claims, nil
}

// endorsementKey finds the certificate for the report's key — in the
// certificate table, then ev.EndorsementKey, then the KeySource — and
// returns it once its chain to a pinned ARK has verified at time at.
func (v *Verifier) endorsementKey(ctx context.Context, ev Evidence, at time.Time) (*EndorsementKey, error) {
	signer := reportSigner(ev.Report)
	table, err := parseCertTable(ev.CertTable)
	if err != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "%w", err)
	}
	var foreign bool // an ARK/ASK that does not count; noted if the chain fails
	var offered [][]byte
	for g, der := range table {
		if g != guidVCEK && g != guidVLEK {
			offered = append(offered, der)
		}
	}
	offered = append(offered, ev.Chain...)
	for _, der := range offered {
		if !v.roots.pinned(der) {
			foreign = true
		}
	}
	roots := v.roots
	if r := v.evidenceRoots(offered); r != nil {
		roots, foreign = r, false
	}
	der := table[guidVCEK]
	if signer == SignerVLEK {
		der = table[guidVLEK]
	}
	if der == nil && ev.EndorsementKey != nil {
		// Only unwrap PEM here: the chain cache is keyed by the DER bytes,
		// so a known key is never parsed again.
		der, err = unPEM(ev.EndorsementKey)
		if err != nil {
			return nil, attest.Errorf(attest.ReasonMalformedEvidence, "endorsement key: %w", err)
		}
	}
	var parsed *x509.Certificate // from a CertKeySource: not verified yet
	if der == nil {
		if der, parsed, err = v.fetch(ctx, ev.Report, signer); err != nil {
			return nil, err
		}
	}
	e, err := v.verifyChain(der, parsed, at, roots)
	if err != nil {
		if foreign {
			err = fmt.Errorf("%w (the evidence's own ARK/ASK is not AMD's pinned one and was ignored)", err)
		}
		return nil, err
	}
	if v.revocation != nil {
		if err := v.revocation.Check(ctx, e.ek.Product, e.ek.Signer, e.intermediate, e.ek.Cert); err != nil {
			if attest.ReasonOf(err) == attest.ReasonCertRevoked {
				v.cache.Remove(e.key)
			}
			return nil, err
		}
	}
	return e.ek, nil
}

// evidenceRoots returns the roots made of the evidence's own ARK and
// ASK/ASVK when the Verifier trusts that ARK's key (Roots.WithARKKey),
// remembering them by the certificates' bytes so that each set is parsed and
// checked once.
func (v *Verifier) evidenceRoots(offered [][]byte) *Roots {
	if len(v.roots.arkKeys) == 0 || len(offered) == 0 {
		return nil
	}
	h := sha256.New()
	for _, der := range offered {
		sum := sha256.Sum256(der)
		h.Write(sum[:])
	}
	var k [sha256.Size]byte
	h.Sum(k[:0])
	v.evMu.Lock()
	r, ok := v.evRoots[k]
	v.evMu.Unlock()
	if ok {
		return r
	}
	r = v.roots.fromEvidence(offered)
	v.evMu.Lock()
	if len(v.evRoots) >= maxEvidenceRoots {
		clear(v.evRoots)
	}
	v.evRoots[k] = r
	v.evMu.Unlock()
	return r
}

// maxEvidenceRoots bounds the evidence-roots memo.
const maxEvidenceRoots = 256

// fetch asks the KeySource for the VCEK named by the report's unverified
// CHIP_ID and REPORTED_TCB. A wrong guess fails closed: the key it returns
// must still chain to a pinned root and verify the signature.
func (v *Verifier) fetch(ctx context.Context, report []byte, signer Signer) ([]byte, *x509.Certificate, error) {
	if v.keys == nil {
		return nil, nil, attest.Errorf(attest.ReasonVCEKUnavailable, "no %s certificate in the evidence and fetching is disabled", signer)
	}
	if signer == SignerVLEK {
		return nil, nil, attest.Errorf(attest.ReasonVCEKUnavailable, "no VLEK certificate in the evidence; VLEKs are not served by the AMD KDS to verifiers")
	}
	var chipID [64]byte
	copy(chipID[:], report[0x1A0:0x1E0])
	if chipID == ([64]byte{}) {
		return nil, nil, attest.Errorf(attest.ReasonVCEKUnavailable, "CHIP_ID is masked; the VCEK cannot be looked up")
	}
	certs, _ := v.keys.(CertKeySource)
	tcb := TCBVersion(leUint64(report[0x180:0x188]))
	var tried []string // "<product>: <why not>", for a refusal that names every line tried
	var lastErr error
	for _, p := range candidateProducts(report) {
		hwid := chipID[:]
		if p == Turin {
			hwid = chipID[:8]
		}
		req := KeyRequest{Product: p, Signer: SignerVCEK, HWID: hwid, TCB: tcb}
		if certs != nil {
			cert, err := certs.EndorsementCert(ctx, req)
			if err == nil {
				return cert.Raw, cert, nil
			}
			lastErr, tried = err, append(tried, string(p)+": "+attest.Detail(err))
			continue
		}
		der, err := v.keys.EndorsementKey(ctx, req)
		if err == nil {
			return der, nil, nil
		}
		lastErr, tried = err, append(tried, string(p)+": "+attest.Detail(err))
	}
	if len(tried) < 2 {
		return nil, nil, attest.WithReason(attest.ReasonVCEKUnavailable, "", lastErr)
	}
	// Every product line tried is named; the last one's error stays in
	// the chain (its Retry-After, if any, counts).
	inner := lastErr
	var ae *attest.Error
	if errors.As(lastErr, &ae) && ae.Err != nil {
		inner = ae.Err
	}
	return nil, nil, attest.Errorf(attest.ReasonVCEKUnavailable, "no VCEK for any product line tried (%s; %s: %w)",
		strings.Join(tried[:len(tried)-1], "; "), candidateProducts(report)[len(tried)-1], inner)
}

// candidateProducts lists the product lines whose KDS may hold the report's
// VCEK. Version 3+ reports name their CPU; version 2 reports do not, so the
// CHIP_ID shape decides (Turin ids use bytes 0–7 only) and otherwise Milan
// and Genoa are both tried.
func candidateProducts(report []byte) []Product {
	if leUint32(report[0:4]) >= 3 {
		if p, ok := productFromCPUID(report[0x188], report[0x189]); ok {
			return []Product{p}
		}
	}
	var tail [56]byte
	if bytes.Equal(report[0x1A8:0x1E0], tail[:]) {
		return []Product{Turin}
	}
	return []Product{Milan, Genoa}
}

// verifyChain parses an endorsement key certificate (unless parsed, its
// parse from a CertKeySource, is given) and verifies it up to the pinned
// ARK of the product its issuer names, at time at. Verified chains are
// cached by the certificate's bytes.
func (v *Verifier) verifyChain(der []byte, parsed *x509.Certificate, at time.Time, roots *Roots) (*chainEntry, error) {
	k := sha256.Sum256(der)
	if e, ok := v.cache.Get(k); ok {
		if !e.validAt(at) {
			return nil, attest.Errorf(attest.ReasonCertChainInvalid, "endorsement key chain is valid %s to %s, not at %s",
				e.notBefore.Format(time.RFC3339), e.notAfter.Format(time.RFC3339), at.Format(time.RFC3339))
		}
		return e, nil
	}
	cert := parsed
	if cert == nil {
		var err error
		if cert, err = x509.ParseCertificate(der); err != nil {
			return nil, attest.Errorf(attest.ReasonMalformedEvidence, "endorsement key certificate: %w", err)
		}
	}
	ek, err := ParseEndorsementKey(cert)
	if err != nil {
		return nil, attest.Errorf(attest.ReasonCertChainInvalid, "%w", err)
	}
	pr, ok := roots.Product(ek.Product)
	if !ok {
		return nil, attest.Errorf(attest.ReasonCertChainInvalid, "no pinned root for product %s", ek.Product)
	}
	ica := pr.ASK
	if ek.Signer == SignerVLEK {
		ica = pr.ASVK
	}
	if ica == nil {
		return nil, attest.Errorf(attest.ReasonCertChainInvalid, "no pinned %s intermediate for %s", ek.Signer, ek.Product)
	}
	arks, inters := x509.NewCertPool(), x509.NewCertPool()
	arks.AddCert(pr.ARK)
	inters.AddCert(ica)
	if _, err := cert.Verify(x509.VerifyOptions{
		Roots: arks, Intermediates: inters, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	}); err != nil {
		return nil, attest.Errorf(attest.ReasonCertChainInvalid, "%s does not chain to AMD's pinned %s ARK at %s: %w",
			ek.Signer, ek.Product, at.Format(time.RFC3339), err)
	}
	e := &chainEntry{key: k, ek: ek, intermediate: ica, notBefore: cert.NotBefore, notAfter: cert.NotAfter}
	for _, c := range []*x509.Certificate{ica, pr.ARK} {
		if c.NotBefore.After(e.notBefore) {
			e.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(e.notAfter) {
			e.notAfter = c.NotAfter
		}
	}
	v.cache.Put(e.key, e)
	return e, nil
}

// checkSignature verifies the report's ECDSA P-384/SHA-384 signature over
// bytes 0x000–0x29F (SEV-SNP ABI 56860, "Signature Block Format": R and S
// are 72-byte little-endian fields, the rest of the 512-byte block is zero).
func checkSignature(report []byte, key *ecdsa.PublicKey) error {
	for _, b := range report[sigPaddingStart:] {
		if b != 0 {
			return attest.Errorf(attest.ReasonSignatureInvalid, "signature block padding is not zero")
		}
	}
	der, err := abi.ReportToSignatureDER(report)
	if err != nil {
		return attest.Errorf(attest.ReasonSignatureInvalid, "%w", err)
	}
	digest := sha512.Sum384(report[:signedSize])
	if !ecdsa.VerifyASN1(key, digest[:], der) {
		return attest.Errorf(attest.ReasonSignatureInvalid, "report signature does not verify under the endorsement key")
	}
	return nil
}

// checkKeyMatchesReport checks that the verified key is the one the report
// says signed it, for the product its CPU reports, and that the key's
// certified TCB and chip are the report's (VCEK spec 57230: the key is
// derived from REPORTED_TCB; hwID is CHIP_ID, or CHIP_ID[0:8] on Turin).
func checkKeyMatchesReport(ek *EndorsementKey, r *decoded) error {
	if r.signer != ek.Signer {
		return attest.Errorf(attest.ReasonCertChainInvalid, "report names its signer %s but was verified with a %s", r.signer, ek.Signer)
	}
	if r.cpuidKnown && r.cpuidProduct != ek.Product {
		return attest.Errorf(attest.ReasonCertChainInvalid, "report is from a %s CPU but its key chains to the %s root", r.cpuidProduct, ek.Product)
	}
	if ek.TCB != r.reportedTCB {
		return attest.Errorf(attest.ReasonTCBMismatch, "endorsement key is for TCB %#016x, report's REPORTED_TCB is %#016x", uint64(ek.TCB), uint64(r.reportedTCB))
	}
	if ek.Signer == SignerVCEK && !r.chipIDMasked {
		if !chipMatches(ek.HWID, r.claims.ChipID[:]) {
			return attest.Errorf(attest.ReasonCertChainInvalid, "the VCEK is for chip %s, the report is from chip %s", chipPrefix(ek.HWID), chipPrefix(r.claims.ChipID[:]))
		}
	}
	return nil
}

// chipMatches reports whether a VCEK's hwID names the chip of CHIP_ID
// (64 bytes): all of it, or CHIP_ID[0:8] for an 8-byte (Turin) hwID.
func chipMatches(hwid, chipID []byte) bool {
	return len(hwid) <= len(chipID) && bytes.Equal(hwid, chipID[:len(hwid)])
}

// chipPrefix is a chip id shortened for messages: its first 4 bytes in hex
// and an ellipsis. Whole chip ids never go into logs or answers (STYLE
// habit 7).
func chipPrefix(id []byte) string {
	return fmt.Sprintf("%x…", id[:min(4, len(id))])
}

// CertificateDER returns the DER bytes of a certificate given as DER or
// PEM. Of a PEM bundle (VCEK, ASK, ARK as Azure's THIM serves it) the first
// certificate is taken.
func CertificateDER(b []byte) ([]byte, error) {
	der, err := unPEM(b)
	if err != nil {
		return nil, err
	}
	if _, err := x509.ParseCertificate(der); err != nil {
		return nil, err
	}
	return der, nil
}

// unPEM returns the first PEM CERTIFICATE of b, or b itself if b is not PEM.
func unPEM(b []byte) ([]byte, error) {
	blk, _ := pem.Decode(b)
	if blk == nil {
		return b, nil
	}
	if blk.Type != "CERTIFICATE" {
		return nil, errors.New("PEM block is not a CERTIFICATE")
	}
	return blk.Bytes, nil
}

// allZero reports whether every byte of b is zero (a masked CHIP_ID).
func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
