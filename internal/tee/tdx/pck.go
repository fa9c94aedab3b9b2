package tdx

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	"encoding/asn1"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
)

// OIDs of the SGX extensions of a PCK certificate (Intel SGX PCK
// Certificate and CRL Profile, "SGX Extensions").
var (
	oidSGXExtensions = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}
	oidPPID          = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 1}
	oidTCB           = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 2}
	oidPCEID         = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 3}
	oidFMSPC         = asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1, 4}
)

// PCKInfo is what a PCK certificate certifies about its platform.
type PCKInfo struct {
	// PPID is the platform's provisioning id, 16 bytes (a per-platform
	// identifier: never log it); zero if the certificate has none.
	PPID [16]byte
	// CPUSVN are the 16 SGX TCB component SVNs (TCB extension .1 to .16).
	CPUSVN [16]byte
	// PCESVN is the PCE's SVN (TCB extension .17).
	PCESVN uint16
	// PCEID is the PCE's id, 2 bytes.
	PCEID [2]byte
	// FMSPC names the platform's family, model, stepping and platform type,
	// 6 bytes; TCB info is published per FMSPC.
	FMSPC [6]byte
	// CA says which PCK CA issued the certificate: "platform" or
	// "processor" (the CRL to consult).
	CA string
}

type sgxExt struct {
	ID    asn1.ObjectIdentifier
	Value asn1.RawValue
}

// ParsePCK reads the SGX extensions of a PCK certificate.
func ParsePCK(c *x509.Certificate) (*PCKInfo, error) {
	var raw []byte
	for _, e := range c.Extensions {
		if e.Id.Equal(oidSGXExtensions) {
			raw = e.Value
		}
	}
	if raw == nil {
		return nil, errors.New("PCK certificate has no SGX extensions")
	}
	var exts []sgxExt
	if rest, err := asn1.Unmarshal(raw, &exts); err != nil || len(rest) != 0 {
		return nil, fmt.Errorf("PCK SGX extensions: %v", err)
	}
	p := &PCKInfo{}
	var have struct{ tcb, pceid, fmspc, pcesvn bool }
	for _, e := range exts {
		switch {
		case e.ID.Equal(oidTCB):
			var comps []sgxExt
			if _, err := asn1.Unmarshal(e.Value.FullBytes, &comps); err != nil {
				return nil, fmt.Errorf("PCK TCB extension: %v", err)
			}
			seen := 0
			for _, comp := range comps {
				if len(comp.ID) != len(oidTCB)+1 || !comp.ID[:len(oidTCB)].Equal(oidTCB) {
					continue
				}
				n := comp.ID[len(oidTCB)]
				switch {
				case n >= 1 && n <= 16:
					var v int
					if _, err := asn1.Unmarshal(comp.Value.FullBytes, &v); err != nil || v < 0 || v > 255 {
						return nil, fmt.Errorf("PCK TCB component %d: not an SVN", n)
					}
					p.CPUSVN[n-1] = byte(v)
					seen++
				case n == 17:
					var v int
					if _, err := asn1.Unmarshal(comp.Value.FullBytes, &v); err != nil || v < 0 || v > 0xFFFF {
						return nil, errors.New("PCK PCESVN: not an SVN")
					}
					p.PCESVN = uint16(v)
					have.pcesvn = true
				}
			}
			have.tcb = seen == 16
		case e.ID.Equal(oidPPID):
			var b []byte
			if _, err := asn1.Unmarshal(e.Value.FullBytes, &b); err == nil && len(b) == 16 {
				copy(p.PPID[:], b)
			}
		case e.ID.Equal(oidPCEID):
			var b []byte
			if _, err := asn1.Unmarshal(e.Value.FullBytes, &b); err != nil || len(b) != 2 {
				return nil, errors.New("PCK PCE-ID: not 2 bytes")
			}
			copy(p.PCEID[:], b)
			have.pceid = true
		case e.ID.Equal(oidFMSPC):
			var b []byte
			if _, err := asn1.Unmarshal(e.Value.FullBytes, &b); err != nil || len(b) != 6 {
				return nil, errors.New("PCK FMSPC: not 6 bytes")
			}
			copy(p.FMSPC[:], b)
			have.fmspc = true
		}
	}
	if !have.tcb || !have.pcesvn || !have.pceid || !have.fmspc {
		return nil, errors.New("PCK certificate lacks TCB components, PCESVN, PCE-ID or FMSPC")
	}
	switch cn := c.Issuer.CommonName; {
	case strings.Contains(cn, "Platform"):
		p.CA = "platform"
	case strings.Contains(cn, "Processor"):
		p.CA = "processor"
	default:
		return nil, fmt.Errorf("PCK issuer %q is neither a Platform nor a Processor CA", cn)
	}
	return p, nil
}

// pckEntry is a PCK chain that has verified to the pinned root, with the
// window in which all its certificates are valid (re-checked at every use).
type pckEntry struct {
	leaf, ca            *x509.Certificate
	key                 *ecdsa.PublicKey
	info                *PCKInfo
	notBefore, notAfter time.Time
}

func (e *pckEntry) validAt(t time.Time) bool {
	return !t.Before(e.notBefore) && !t.After(e.notAfter)
}

// verifyPCKChain parses the quote's PEM chain (PCK leaf, PCK CA, root) and
// verifies it to the pinned root at time at, ignoring the root the quote
// carries. Verified chains are cached by the chain's bytes.
func (v *Verifier) verifyPCKChain(pemChain []byte, at time.Time) (*pckEntry, error) {
	k := sha256.Sum256(pemChain)
	if e, ok := v.chains.Get(k); ok {
		if !e.validAt(at) {
			return nil, attest.Errorf(attest.ReasonCertChainInvalid, "PCK chain is valid %s to %s, not at %s",
				e.notBefore.Format(time.RFC3339), e.notAfter.Format(time.RFC3339), at.Format(time.RFC3339))
		}
		return e, nil
	}
	certs, err := ParseCertificates(pemChain)
	if err != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "PCK chain: %w", err)
	}
	if len(certs) < 2 {
		return nil, attest.Errorf(attest.ReasonCertChainInvalid, "PCK chain has %d certificates, want leaf and CA", len(certs))
	}
	leaf, ca := certs[0], certs[1]
	root := v.roots.Root
	if !ca.IsCA || ca.CheckSignatureFrom(root) != nil {
		return nil, attest.Errorf(attest.ReasonCertChainInvalid, "PCK CA %q is not signed by the pinned root %q", ca.Subject.CommonName, root.Subject.CommonName)
	}
	if err := leaf.CheckSignatureFrom(ca); err != nil {
		return nil, attest.Errorf(attest.ReasonCertChainInvalid, "PCK certificate is not signed by %q: %w", ca.Subject.CommonName, err)
	}
	key, ok := leaf.PublicKey.(*ecdsa.PublicKey)
	if !ok || key.Curve != elliptic.P256() {
		return nil, attest.Errorf(attest.ReasonCertChainInvalid, "PCK key is not ECDSA P-256")
	}
	info, err := ParsePCK(leaf)
	if err != nil {
		return nil, &attest.Error{Reason: attest.ReasonCertChainInvalid, Err: err}
	}
	e := &pckEntry{leaf: leaf, ca: ca, key: key, info: info, notBefore: leaf.NotBefore, notAfter: leaf.NotAfter}
	for _, c := range []*x509.Certificate{ca, root} {
		if c.NotBefore.After(e.notBefore) {
			e.notBefore = c.NotBefore
		}
		if c.NotAfter.Before(e.notAfter) {
			e.notAfter = c.NotAfter
		}
	}
	if !e.validAt(at) {
		return nil, attest.Errorf(attest.ReasonCertChainInvalid, "PCK chain is valid %s to %s, not at %s",
			e.notBefore.Format(time.RFC3339), e.notAfter.Format(time.RFC3339), at.Format(time.RFC3339))
	}
	v.chains.Put(k, e)
	return e, nil
}
