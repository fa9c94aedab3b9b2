package tdx

import (
	"crypto/ecdsa"
	"crypto/x509"
	_ "embed"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
)

// intelRootPEM is the Intel SGX Root CA (self-signed, ECDSA P-256, valid to
// 2049-12-31), as Intel publishes it and go-tdx-guest embeds it.
//
//go:embed intel-sgx-root-ca.pem
var intelRootPEM []byte

// intelTCBSigningPEM holds the Intel SGX TCB Signing certificates that sign
// TCB info and QE identity: the 2018 issue (expired 2025-05-21) and its
// 2025 reissue (same key and serial, valid 2025-05-06 to 2032-05-06). They
// count only when they chain to the pinned root at the time of use; PCS
// serves them in its issuer-chain headers, so collateral may also bring
// them.
//
//go:embed intel-tcb-signing.pem
var intelTCBSigningPEM []byte

// Roots is the trust anchor a Verifier accepts: one root CA (the Intel SGX
// Root CA) that every PCK chain, TCB signing certificate and CRL must chain
// to, and the TCB signing certificates known in advance.
type Roots struct {
	Root *x509.Certificate
	// TCBSigning are candidate signers of TCB info and QE identity; each
	// must chain to Root at the time of use.
	TCBSigning []*x509.Certificate
}

var (
	intelOnce  sync.Once
	intelRoots *Roots
)

// IntelRoots returns the pinned Intel SGX Root CA and Intel's TCB signing
// certificates.
func IntelRoots() *Roots {
	intelOnce.Do(func() {
		root, err := ParseCertificates(intelRootPEM)
		if err != nil || len(root) != 1 {
			panic(fmt.Sprintf("tdx: embedded Intel SGX Root CA: %v", err))
		}
		tcb, err := ParseCertificates(intelTCBSigningPEM)
		if err != nil {
			panic(fmt.Sprintf("tdx: embedded TCB signing certificates: %v", err))
		}
		intelRoots = &Roots{Root: root[0], TCBSigning: tcb}
	})
	return intelRoots
}

// NewRoots returns Roots pinning root (a self-signed ECDSA P-256 CA, as a
// test-only Intel-like root) with the given TCB signing certificates.
func NewRoots(root *x509.Certificate, tcbSigning ...*x509.Certificate) (*Roots, error) {
	if _, ok := root.PublicKey.(*ecdsa.PublicKey); !ok {
		return nil, errors.New("tdx: root key is not ECDSA")
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("tdx: root is not self-signed: %w", err)
	}
	return &Roots{Root: root, TCBSigning: tcbSigning}, nil
}

// ParseCertificates parses every certificate of PEM text or of one DER
// certificate.
func ParseCertificates(b []byte) ([]*x509.Certificate, error) {
	var out []*x509.Certificate
	rest := b
	for {
		var blk *pem.Block
		blk, rest = pem.Decode(rest)
		if blk == nil {
			break
		}
		if blk.Type != "CERTIFICATE" {
			continue
		}
		c, err := x509.ParseCertificate(blk.Bytes)
		if err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	if out != nil {
		return out, nil
	}
	c, err := x509.ParseCertificate(b)
	if err != nil {
		return nil, err
	}
	return []*x509.Certificate{c}, nil
}
