package nitro

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/binary"
	"time"

	"github.com/veraison/go-cose"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/lru"
)

// Evidence is one attestation document.
type Evidence struct {
	// Document is the COSE_Sign1 the NSM returned, as raw CBOR.
	Document []byte
}

// Options configures a Verifier. The zero value verifies against the pinned
// AWS Nitro Enclaves Root-G1 at the current time and refuses debug-mode
// enclaves.
type Options struct {
	// Roots is the trust anchor; nil means AWSRoots().
	Roots *Roots
	// Now returns the time at which the certificates are judged; nil means
	// time.Now. A real document's leaf certificate lives three hours.
	Now func() time.Time
	// CacheSize bounds the verified-chain cache; 0 means DefaultCacheSize.
	CacheSize int
	// AllowDebug accepts enclaves in debug mode (PCR0, PCR1 and PCR2 all
	// zero). Dangerous: a debug-mode enclave's console is the parent
	// instance's to read, and its measurements are not recorded.
	AllowDebug bool
}

// DefaultCacheSize is the number of verified certificate chains a Verifier
// remembers when Options.CacheSize is 0. One entry is a few hundred bytes.
const DefaultCacheSize = 1024

// Verifier verifies Nitro attestation documents. It is safe for concurrent
// use.
type Verifier struct {
	roots      *Roots
	now        func() time.Time
	allowDebug bool
	chains     *lru.Cache[[sha256.Size]byte, *chainEntry]
}

// chainEntry is a verified chain: the leaf's key and the window in which
// every certificate of the chain is valid.
type chainEntry struct {
	key                 *ecdsa.PublicKey
	notBefore, notAfter time.Time
}

// New returns a Verifier with the given options.
func New(o Options) *Verifier {
	v := &Verifier{roots: o.Roots, now: o.Now, allowDebug: o.AllowDebug}
	if v.roots == nil {
		v.roots = AWSRoots()
	}
	if v.now == nil {
		v.now = time.Now
	}
	n := o.CacheSize
	if n <= 0 {
		n = DefaultCacheSize
	}
	v.chains = lru.New[[sha256.Size]byte, *chainEntry](n)
	return v
}

// Verify checks that ev.Document was made by an AWS Nitro hypervisor — its
// certificate chain to the pinned root at the time of judgement, its COSE
// signature by the leaf key — then reads its fields strictly and applies
// the safety floor (not in debug mode). It returns the claims; whether the
// nonce is the expected REPORT_DATA is the caller's comparison
// (attest.ExpectReportData). Every rejection is an *attest.Error.
func (v *Verifier) Verify(_ context.Context, ev Evidence) (*attest.NitroClaims, error) {
	f, err := frame(ev.Document)
	if err != nil {
		return nil, err
	}
	key, err := v.verifyChain(&f.env, v.now())
	if err != nil {
		return nil, err
	}
	verifier, err := cose.NewVerifier(cose.AlgorithmES384, key)
	if err != nil {
		return nil, attest.Errorf(attest.ReasonCertChainInvalid, "leaf key: %w", err)
	}
	if err := f.msg.Verify(nil, verifier); err != nil {
		return nil, attest.Errorf(attest.ReasonSignatureInvalid, "COSE_Sign1 signature does not verify under the leaf key: %w", err)
	}
	// From here on the payload is the Nitro hypervisor's.
	d, err := f.env.fields()
	if err != nil {
		return nil, err
	}
	c := &attest.NitroClaims{
		TEE: attest.TEENitro, ModuleID: d.moduleID, Timestamp: d.timestamp, Digest: d.digest,
		UserData: d.userData, PublicKey: d.publicKey, ReportData: d.nonce,
	}
	for i, p := range d.pcrs {
		if i < attest.NitroPCRs {
			*c.PCR(int(i)) = attest.Hex(p)
		}
	}
	for i := range 3 {
		if *c.PCR(i) == nil {
			return nil, attest.Errorf(attest.ReasonMalformedEvidence, "the document has no PCR%d", i)
		}
	}
	if !v.allowDebug && allZero(c.PCR0) && allZero(c.PCR1) && allZero(c.PCR2) {
		return nil, attest.Errorf(attest.ReasonDebugEnabled, "PCR0, PCR1 and PCR2 are all zero: the enclave runs in debug mode")
	}
	return c, nil
}

// verifyChain returns the leaf key of a chain (certificate, then cabundle
// from the root down) that ends in the pinned root and whose every
// certificate is valid at time at. Verified chains are cached by their
// bytes; validity is checked at every use.
func (v *Verifier) verifyChain(e *envelope, at time.Time) (*ecdsa.PublicKey, error) {
	h := sha256.New()
	for _, c := range append([]bstr{e.Certificate}, e.CABundle...) {
		h.Write(binary.BigEndian.AppendUint32(nil, uint32(len(c))))
		h.Write(c)
	}
	var id [sha256.Size]byte
	h.Sum(id[:0])
	ent, ok := v.chains.Get(id)
	if !ok {
		var err error
		if ent, err = v.buildChain(e, at); err != nil {
			return nil, err
		}
		v.chains.Put(id, ent)
	}
	if at.Before(ent.notBefore) || at.After(ent.notAfter) {
		return nil, attest.Errorf(attest.ReasonCertChainInvalid, "the chain is valid %s to %s, not at %s",
			ent.notBefore.Format(time.RFC3339), ent.notAfter.Format(time.RFC3339), at.Format(time.RFC3339))
	}
	return ent.key, nil
}

func (v *Verifier) buildChain(e *envelope, at time.Time) (*chainEntry, error) {
	bad := func(format string, args ...any) error {
		return attest.Errorf(attest.ReasonCertChainInvalid, format, args...)
	}
	if !bytes.Equal(e.CABundle[0], v.roots.Root.Raw) {
		return nil, bad("cabundle[0] is not the pinned root %q", v.roots.Root.Subject.CommonName)
	}
	leaf, err := x509.ParseCertificate(e.Certificate)
	if err != nil {
		return nil, bad("certificate: %w", err)
	}
	inter := x509.NewCertPool()
	for i, der := range e.CABundle[1:] {
		c, err := x509.ParseCertificate(der)
		if err != nil {
			return nil, bad("cabundle[%d]: %w", i+1, err)
		}
		inter.AddCert(c)
	}
	chains, err := leaf.Verify(x509.VerifyOptions{
		Roots: v.roots.pool, Intermediates: inter, CurrentTime: at,
		KeyUsages: []x509.ExtKeyUsage{x509.ExtKeyUsageAny},
	})
	if err != nil {
		return nil, bad("certificate chain: %w", err)
	}
	key, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P384() {
		return nil, bad("the leaf key is not ECDSA P-384")
	}
	ent := &chainEntry{key: key, notBefore: leaf.NotBefore, notAfter: leaf.NotAfter}
	for _, c := range chains[0] {
		if c.NotBefore.After(ent.notBefore) {
			ent.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(ent.notAfter) {
			ent.notAfter = c.NotAfter
		}
	}
	return ent, nil
}

func allZero(b []byte) bool {
	for _, x := range b {
		if x != 0 {
			return false
		}
	}
	return true
}
