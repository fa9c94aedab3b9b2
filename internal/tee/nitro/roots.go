package nitro

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"crypto/x509"
	_ "embed"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"sync"
)

// awsRootPEM is the AWS Nitro Enclaves Root-G1 (self-signed, ECDSA P-384,
// valid 2019-10-28 to 2049-10-28), as AWS publishes it.
//
//go:embed aws-nitro-enclaves-root-g1.pem
var awsRootPEM []byte

// AWSRootFingerprint is the SHA-256 of the AWS Nitro Enclaves Root-G1's DER,
// as AWS documents it ("Verifying the root of trust"); the embedded root is
// checked against it before it is trusted.
const AWSRootFingerprint = "641a0321a3e244efe456463195d606317ed7cdcc3c1756e09893f3c68f79bb5b"

// Roots is the trust anchor a Verifier accepts: one root CA that every
// document's certificate chain must end in.
type Roots struct {
	Root *x509.Certificate
	pool *x509.CertPool
}

var (
	awsOnce  sync.Once
	awsRoots *Roots
)

// AWSRoots returns the pinned AWS Nitro Enclaves Root-G1. It panics if the
// embedded certificate does not have AWSRootFingerprint: a build that
// carries another root must not start.
func AWSRoots() *Roots {
	awsOnce.Do(func() {
		r, err := pinnedRoots(awsRootPEM, AWSRootFingerprint)
		if err != nil {
			panic(fmt.Sprintf("nitro: embedded AWS Nitro Enclaves Root-G1: %v", err))
		}
		awsRoots = r
	})
	return awsRoots
}

// pinnedRoots parses one PEM certificate and checks its DER's SHA-256.
func pinnedRoots(pemBytes []byte, fingerprint string) (*Roots, error) {
	b, rest := pem.Decode(pemBytes)
	if b == nil || b.Type != "CERTIFICATE" || len(bytes.TrimSpace(rest)) != 0 {
		return nil, errors.New("not exactly one PEM certificate")
	}
	sum := sha256.Sum256(b.Bytes)
	if hex.EncodeToString(sum[:]) != fingerprint {
		return nil, fmt.Errorf("SHA-256 fingerprint %x, want %s", sum, fingerprint)
	}
	c, err := x509.ParseCertificate(b.Bytes)
	if err != nil {
		return nil, err
	}
	return NewRoots(c)
}

// NewRoots returns Roots pinning root, a self-signed ECDSA P-384 CA: AWS's,
// or a test-only one (a simulator's or a test's), never trusted in
// production.
func NewRoots(root *x509.Certificate) (*Roots, error) {
	k, ok := root.PublicKey.(*ecdsa.PublicKey)
	if !ok || k.Curve != elliptic.P384() {
		return nil, errors.New("nitro: root key is not ECDSA P-384")
	}
	if err := root.CheckSignatureFrom(root); err != nil {
		return nil, fmt.Errorf("nitro: root is not self-signed: %w", err)
	}
	pool := x509.NewCertPool()
	pool.AddCert(root)
	return &Roots{Root: root, pool: pool}, nil
}
