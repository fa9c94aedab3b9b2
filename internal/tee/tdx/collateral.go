package tdx

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/sha256"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
)

// CollateralRequest names the collateral one quote needs.
type CollateralRequest struct {
	// FMSPC selects the TCB info (6 bytes, from the PCK certificate).
	FMSPC [6]byte
	// CA is the PCK's issuer, "platform" or "processor": the PCK CRL.
	CA string
}

// CollateralSource supplies Intel's collateral for a quote, typically from
// Intel PCS through a cache, or from files. An error means the collateral
// is unavailable; return it with reason collateral_unavailable (a plain
// error counts as such).
type CollateralSource interface {
	Collateral(ctx context.Context, req CollateralRequest) (*Collateral, error)
}

// Collateral is a set of Intel PCS documents: TCB infos (one per FMSPC), a
// QE identity, CRLs (PCK Platform or Processor CA, Intel SGX Root CA) and
// certificates of the issuer chains. Nothing in it is trusted until it has
// verified; the verification of each document (signature, chain) is done
// once and remembered, its validity at a given time is judged at every use.
// A Collateral is safe for concurrent use and meant to be shared.
type Collateral struct {
	TCBInfos     []*TCBInfo
	QEIdentities []*QEIdentity
	CRLs         []*x509.RevocationList
	Certs        []*x509.Certificate

	mu       sync.Mutex
	sigCache map[crlKey]bool // CRL signature checks by (CRL, issuer)
}

type crlKey struct {
	crl    *x509.RevocationList
	issuer *x509.Certificate
}

// signedDoc is one signed JSON document of Intel PCS: the exact bytes of its
// body (what Intel signs), the signature (r ‖ s), and the verdicts on it,
// one per trust anchor it was checked against.
type signedDoc struct {
	body []byte
	sig  []byte

	mu       sync.Mutex
	verdicts map[*x509.Certificate]*docVerdict // by root
}

// docVerdict is the outcome of checking a signedDoc under one root.
type docVerdict struct {
	signers []*x509.Certificate // the TCB signing certificates that verify it
	err     error
}

// TCBInfo is Intel's TDX TCB info for one FMSPC (PCS v4 "tcbInfo", version
// 3, id "TDX").
type TCBInfo struct {
	signedDoc
	ID                      string              `json:"id"`
	Version                 int                 `json:"version"`
	IssueDate               time.Time           `json:"issueDate"`
	NextUpdate              time.Time           `json:"nextUpdate"`
	FMSPC                   string              `json:"fmspc"`
	PCEID                   string              `json:"pceId"`
	TCBType                 int                 `json:"tcbType"`
	TCBEvaluationDataNumber int                 `json:"tcbEvaluationDataNumber"`
	TDXModule               *tdxModule          `json:"tdxModule"`
	TDXModuleIdentities     []tdxModuleIdentity `json:"tdxModuleIdentities"`
	TCBLevels               []platformLevel     `json:"tcbLevels"`

	fmspc [6]byte
	pceID [2]byte
}

type tdxModule struct {
	MRSigner       hexBytes `json:"mrsigner"`
	Attributes     hexBytes `json:"attributes"`
	AttributesMask hexBytes `json:"attributesMask"`
}

type tdxModuleIdentity struct {
	ID string `json:"id"`
	tdxModule
	TCBLevels []moduleLevel `json:"tcbLevels"`
}

type moduleLevel struct {
	TCB struct {
		ISVSVN int `json:"isvsvn"`
	} `json:"tcb"`
	TCBDate     string   `json:"tcbDate"`
	TCBStatus   string   `json:"tcbStatus"`
	AdvisoryIDs []string `json:"advisoryIDs"`
}

type platformLevel struct {
	TCB struct {
		SGXComponents []svn `json:"sgxtcbcomponents"`
		PCESVN        int   `json:"pcesvn"`
		TDXComponents []svn `json:"tdxtcbcomponents"`
	} `json:"tcb"`
	TCBDate     string   `json:"tcbDate"`
	TCBStatus   string   `json:"tcbStatus"`
	AdvisoryIDs []string `json:"advisoryIDs"`
}

type svn struct {
	SVN int `json:"svn"`
}

// QEIdentity is Intel's identity of the TD Quoting Enclave (PCS v4
// "enclaveIdentity", version 2, id "TD_QE").
type QEIdentity struct {
	signedDoc
	ID                      string        `json:"id"`
	Version                 int           `json:"version"`
	IssueDate               time.Time     `json:"issueDate"`
	NextUpdate              time.Time     `json:"nextUpdate"`
	TCBEvaluationDataNumber int           `json:"tcbEvaluationDataNumber"`
	MiscSelect              hexBytes      `json:"miscselect"`
	MiscSelectMask          hexBytes      `json:"miscselectMask"`
	Attributes              hexBytes      `json:"attributes"`
	AttributesMask          hexBytes      `json:"attributesMask"`
	MRSigner                hexBytes      `json:"mrsigner"`
	ISVProdID               int           `json:"isvprodid"`
	TCBLevels               []moduleLevel `json:"tcbLevels"`
}

// hexBytes is a hex JSON string, either case (PCS answers in upper case).
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// MaxCollateralSize bounds one collateral document (TCB infos are a few
// KiB; Intel's PCK CRLs tens of KiB).
const MaxCollateralSize = 1 << 20

// ParseCollateral sorts documents into a Collateral, each recognised by its
// content: TCB info JSON ({"tcbInfo":…,"signature":…}), QE identity JSON
// ({"enclaveIdentity":…}), a CRL (DER or PEM), certificates (PEM, e.g. a
// PCS issuer chain, or DER), or a JSON bundle whose string values are such
// documents (as Intel MigTD's collateral file: rootCaCrl, pckCrl,
// platforms[].tcbInfo, qeIdentity, the issuer chains), or dcap-qvl's
// QuoteCollateralV3 as JSON. A document that is none of these is an error
// naming its index. Nothing is verified here; Verify does that.
func ParseCollateral(docs ...[]byte) (*Collateral, error) {
	c := &Collateral{}
	for i, d := range docs {
		if err := c.add(d); err != nil {
			return nil, fmt.Errorf("collateral document %d: %w", i+1, err)
		}
	}
	return c, nil
}

func (c *Collateral) add(d []byte) error {
	if len(d) > MaxCollateralSize {
		return fmt.Errorf("%d bytes, limit %d", len(d), MaxCollateralSize)
	}
	t := bytes.TrimSpace(d)
	if len(t) > 0 && t[0] == '{' {
		var env struct {
			TCBInfo         json.RawMessage `json:"tcbInfo"`
			EnclaveIdentity json.RawMessage `json:"enclaveIdentity"`
			Signature       string          `json:"signature"`
		}
		if err := json.Unmarshal(t, &env); err != nil {
			return fmt.Errorf("JSON: %w", err)
		}
		if env.TCBInfo == nil && env.EnclaveIdentity == nil {
			if ok, err := c.addQVLCollateral(t); ok {
				return err
			}
			return c.addBundle(t)
		}
		sig, err := hex.DecodeString(env.Signature)
		if err != nil || len(sig) != 64 {
			return errors.New(`"signature" is not 64 bytes of hex`)
		}
		if env.TCBInfo != nil {
			return c.addTCBInfo(env.TCBInfo, sig)
		}
		return c.addQEIdentity(env.EnclaveIdentity, sig)
	}
	if blk, _ := pem.Decode(t); blk != nil {
		for rest := t; ; {
			blk, rest = pem.Decode(rest)
			if blk == nil {
				return nil
			}
			switch blk.Type {
			case "X509 CRL":
				crl, err := x509.ParseRevocationList(blk.Bytes)
				if err != nil {
					return fmt.Errorf("CRL: %w", err)
				}
				c.CRLs = append(c.CRLs, crl)
			case "CERTIFICATE":
				cert, err := x509.ParseCertificate(blk.Bytes)
				if err != nil {
					return fmt.Errorf("certificate: %w", err)
				}
				c.Certs = append(c.Certs, cert)
			default:
				return fmt.Errorf("PEM block %q is neither a CRL nor a certificate", blk.Type)
			}
		}
	}
	if crl, err := x509.ParseRevocationList(d); err == nil {
		c.CRLs = append(c.CRLs, crl)
		return nil
	}
	if cert, err := x509.ParseCertificate(d); err == nil {
		c.Certs = append(c.Certs, cert)
		return nil
	}
	return errors.New("neither TCB info, QE identity, CRL nor certificate")
}

// addTCBInfo adds a TCB info: body, the exact bytes Intel signed, and its
// 64-byte ECDSA signature.
func (c *Collateral) addTCBInfo(body json.RawMessage, sig []byte) error {
	ti := &TCBInfo{}
	ti.body, ti.sig = body, sig
	if err := json.Unmarshal(body, ti); err != nil {
		return fmt.Errorf("tcbInfo: %w", err)
	}
	fm, err := hex.DecodeString(ti.FMSPC)
	if err != nil || len(fm) != 6 {
		return errors.New("tcbInfo: fmspc is not 6 bytes of hex")
	}
	copy(ti.fmspc[:], fm)
	pce, err := hex.DecodeString(ti.PCEID)
	if err != nil || len(pce) != 2 {
		return errors.New("tcbInfo: pceId is not 2 bytes of hex")
	}
	copy(ti.pceID[:], pce)
	c.TCBInfos = append(c.TCBInfos, ti)
	return nil
}

// addQEIdentity adds a QE identity: body, the exact bytes Intel signed,
// and its 64-byte ECDSA signature.
func (c *Collateral) addQEIdentity(body json.RawMessage, sig []byte) error {
	qe := &QEIdentity{}
	qe.body, qe.sig = body, sig
	if err := json.Unmarshal(body, qe); err != nil {
		return fmt.Errorf("enclaveIdentity: %w", err)
	}
	c.QEIdentities = append(c.QEIdentities, qe)
	return nil
}

// addQVLCollateral reads dcap-qvl's QuoteCollateralV3 as JSON: tcb_info and
// qe_identity are the signed bodies as strings, their signatures and the
// CRLs (root_ca_crl, pck_crl) bytes written as hex strings or as arrays of
// numbers (serde's form), the issuer chains PEM. It reports false when t is
// not such a document.
func (c *Collateral) addQVLCollateral(t []byte) (bool, error) {
	var q struct {
		TCBInfo         *string         `json:"tcb_info"`
		TCBInfoSig      json.RawMessage `json:"tcb_info_signature"`
		QEIdentity      *string         `json:"qe_identity"`
		QEIdentitySig   json.RawMessage `json:"qe_identity_signature"`
		RootCACRL       json.RawMessage `json:"root_ca_crl"`
		PCKCRL          json.RawMessage `json:"pck_crl"`
		PCKCRLChain     string          `json:"pck_crl_issuer_chain"`
		TCBInfoChain    string          `json:"tcb_info_issuer_chain"`
		QEIdentityChain string          `json:"qe_identity_issuer_chain"`
		PCKCertChain    string          `json:"pck_certificate_chain"`
	}
	if json.Unmarshal(t, &q) != nil || q.TCBInfo == nil || q.QEIdentity == nil {
		return false, nil
	}
	sig, err := qvlBytes(q.TCBInfoSig)
	if err != nil || len(sig) != 64 {
		return true, errors.New("tcb_info_signature is not 64 bytes")
	}
	if err := c.addTCBInfo(json.RawMessage(*q.TCBInfo), sig); err != nil {
		return true, err
	}
	if sig, err = qvlBytes(q.QEIdentitySig); err != nil || len(sig) != 64 {
		return true, errors.New("qe_identity_signature is not 64 bytes")
	}
	if err := c.addQEIdentity(json.RawMessage(*q.QEIdentity), sig); err != nil {
		return true, err
	}
	for name, raw := range map[string]json.RawMessage{"root_ca_crl": q.RootCACRL, "pck_crl": q.PCKCRL} {
		if raw == nil {
			continue
		}
		b, err := qvlBytes(raw)
		if err != nil {
			return true, fmt.Errorf("%s: %w", name, err)
		}
		if err := c.add(b); err != nil {
			return true, fmt.Errorf("%s: %w", name, err)
		}
	}
	for _, chain := range []string{q.PCKCRLChain, q.TCBInfoChain, q.QEIdentityChain, q.PCKCertChain} {
		if strings.TrimSpace(chain) == "" {
			continue
		}
		if err := c.add([]byte(chain)); err != nil {
			return true, err
		}
	}
	return true, nil
}

// qvlBytes reads bytes as dcap-qvl's users write them: a hex string (0x
// allowed), a PEM string (returned as it is), or an array of numbers 0–255.
func qvlBytes(raw json.RawMessage) ([]byte, error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if strings.HasPrefix(strings.TrimSpace(s), "-----BEGIN") {
			return []byte(s), nil
		}
		return hex.DecodeString(string(attest.EvidenceText([]byte(s))))
	}
	var b []byte
	var nums []uint8
	if err := json.Unmarshal(raw, &nums); err != nil {
		return nil, errors.New("neither a hex string nor an array of bytes")
	}
	b = append(b, nums...)
	return b, nil
}

// addBundle adds every document held as a string value of a JSON bundle,
// at most four levels deep; a bundle that holds none is an error.
func (c *Collateral) addBundle(t []byte) error {
	var doc any
	if err := json.Unmarshal(t, &doc); err != nil {
		return fmt.Errorf("JSON: %w", err)
	}
	n := 0
	var walk func(v any, depth int) error
	walk = func(v any, depth int) error {
		switch x := v.(type) {
		case string:
			s := strings.TrimSpace(x)
			if strings.HasPrefix(s, "-----BEGIN") || strings.HasPrefix(s, "{") {
				if err := c.add([]byte(x)); err != nil {
					return err
				}
				n++
			}
		case map[string]any:
			if depth < 4 {
				for _, e := range x {
					if err := walk(e, depth+1); err != nil {
						return err
					}
				}
			}
		case []any:
			if depth < 4 {
				for _, e := range x {
					if err := walk(e, depth+1); err != nil {
						return err
					}
				}
			}
		}
		return nil
	}
	if err := walk(doc, 0); err != nil {
		return err
	}
	if n == 0 {
		return errors.New("JSON is neither TCB info, QE identity nor a bundle of them")
	}
	return nil
}

// tcbInfo returns the TCB info for an FMSPC (compared as bytes, so the case
// of its hex does not matter), TDX's before any other: of several, the
// latest issued at or before at, else the first; nil if there is none.
func (c *Collateral) tcbInfo(fmspc [6]byte, at time.Time) *TCBInfo {
	if ti := c.pickTCBInfo(fmspc, at, true); ti != nil {
		return ti
	}
	return c.pickTCBInfo(fmspc, at, false)
}

func (c *Collateral) pickTCBInfo(fmspc [6]byte, at time.Time, tdxOnly bool) *TCBInfo {
	var best *TCBInfo
	for _, ti := range c.TCBInfos {
		if ti.fmspc != fmspc || (tdxOnly && ti.ID != "TDX") {
			continue
		}
		if best == nil || (!ti.IssueDate.After(at) && (best.IssueDate.After(at) || ti.IssueDate.After(best.IssueDate))) {
			best = ti
		}
	}
	return best
}

// qeIdentity returns the TD QE identity: of several, the latest issued at
// or before at, else the first; nil if there is none.
func (c *Collateral) qeIdentity(at time.Time) *QEIdentity {
	var best *QEIdentity
	for _, qe := range c.QEIdentities {
		if best == nil || (!qe.IssueDate.After(at) && (best.IssueDate.After(at) || qe.IssueDate.After(best.IssueDate))) {
			best = qe
		}
	}
	return best
}

// verify checks a signed document once per root: its ECDSA P-256 signature
// over the exact body bytes by TCB signing certificates that root signed.
// It returns every such certificate (Intel reissued its TCB signing
// certificate with the same key, so several may fit); which of them are
// valid and not revoked is judged at every use. A Collateral shared by
// verifiers of different roots (Intel's, a test-only one) keeps their
// verdicts apart.
func (d *signedDoc) verify(candidates []*x509.Certificate, root *x509.Certificate) ([]*x509.Certificate, error) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if v, ok := d.verdicts[root]; ok {
		return v.signers, v.err
	}
	v := &docVerdict{}
	digest := sha256.Sum256(d.body)
	r, s := new(big.Int).SetBytes(d.sig[:32]), new(big.Int).SetBytes(d.sig[32:])
	signedByKey := false
	for _, cert := range candidates {
		key, ok := cert.PublicKey.(*ecdsa.PublicKey)
		if !ok || !ecdsa.Verify(key, digest[:], r, s) {
			continue
		}
		signedByKey = true
		if cert.CheckSignatureFrom(root) == nil && !slices.ContainsFunc(v.signers, cert.Equal) {
			v.signers = append(v.signers, cert)
		}
	}
	switch {
	case v.signers != nil:
	case signedByKey:
		v.err = errors.New("its signing certificate is not signed by the pinned root")
	default:
		v.err = errors.New("its signature does not verify under any TCB signing certificate at hand")
	}
	if d.verdicts == nil {
		d.verdicts = map[*x509.Certificate]*docVerdict{}
	}
	d.verdicts[root] = v
	return v.signers, v.err
}

// crlSignedBy reports whether issuer signed crl, remembering the answer.
func (c *Collateral) crlSignedBy(crl *x509.RevocationList, issuer *x509.Certificate) bool {
	if !bytes.Equal(crl.RawIssuer, issuer.RawSubject) {
		return false
	}
	key := crlKey{crl, issuer}
	c.mu.Lock()
	if c.sigCache == nil {
		c.sigCache = map[crlKey]bool{}
	}
	ok, seen := c.sigCache[key]
	c.mu.Unlock()
	if seen {
		return ok
	}
	ok = crl.CheckSignatureFrom(issuer) == nil
	c.mu.Lock()
	c.sigCache[key] = ok
	c.mu.Unlock()
	return ok
}

// crlFor returns the CRL issuer signed that is current at time at; an
// *attest.Error when there is none (collateral_unavailable: absent or not
// current).
func (c *Collateral) crlFor(issuer *x509.Certificate, at time.Time) (*x509.RevocationList, error) {
	var stale *x509.RevocationList
	for _, crl := range c.CRLs {
		if !c.crlSignedBy(crl, issuer) {
			continue
		}
		if at.Before(crl.ThisUpdate) || (!crl.NextUpdate.IsZero() && at.After(crl.NextUpdate)) {
			stale = crl
			continue
		}
		return crl, nil
	}
	if stale != nil {
		return nil, attest.Errorf(attest.ReasonCollateralUnavailable, "the CRL of %q is current %s to %s, not at %s",
			issuer.Subject.CommonName, stale.ThisUpdate.Format(time.RFC3339), stale.NextUpdate.Format(time.RFC3339), at.Format(time.RFC3339))
	}
	return nil, attest.Errorf(attest.ReasonCollateralUnavailable, "no CRL of %q in the collateral", issuer.Subject.CommonName)
}

// revoked reports whether crl lists cert.
func revoked(crl *x509.RevocationList, cert *x509.Certificate) bool {
	for _, e := range crl.RevokedCertificateEntries {
		if e.SerialNumber.Cmp(cert.SerialNumber) == 0 {
			return true
		}
	}
	return false
}

// current is the window check of a signed document: issued at or before at,
// next update at or after it.
func current(what string, issue, next, at time.Time) error {
	if at.Before(issue) {
		return attest.Errorf(attest.ReasonCollateralInvalid, "%s was issued %s, after %s", what, issue.Format(time.RFC3339), at.Format(time.RFC3339))
	}
	if at.After(next) {
		return attest.Errorf(attest.ReasonCollateralUnavailable, "%s expired at %s (next update), before %s", what, next.Format(time.RFC3339), at.Format(time.RFC3339))
	}
	return nil
}

// errNoTCBInfo names the TCB info a quote needs.
func errNoTCBInfo(fmspc [6]byte) error {
	return attest.Errorf(attest.ReasonCollateralUnavailable, "no TCB info for FMSPC %s in the collateral", strings.ToUpper(hex.EncodeToString(fmspc[:])))
}

// Static is a CollateralSource that answers every request with the same
// documents (e.g. the files of `trustgate verify --collateral`); a quote
// whose TCB info is not among them gets collateral_unavailable.
type Static struct{ C *Collateral }

// Collateral implements CollateralSource.
func (s Static) Collateral(context.Context, CollateralRequest) (*Collateral, error) {
	if s.C == nil {
		return nil, attest.Errorf(attest.ReasonCollateralUnavailable, "no collateral")
	}
	return s.C, nil
}
