package sim

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"math/big"
	"time"
)

// certSpec is one certificate of a simulated PKI.
type certSpec struct {
	serial              int64
	subject             pkix.Name
	notBefore, notAfter time.Time
	ca                  bool // a CA: KeyUsage CertSign|CRLSign, else DigitalSignature
	ext                 []pkix.Extension
}

// issue makes the certificate of key described by s, signed by signer as
// parent; a nil parent makes it self-signed.
func (s certSpec) issue(key *ecdsa.PublicKey, signer *ecdsa.PrivateKey, parent *x509.Certificate) (*x509.Certificate, error) {
	t := &x509.Certificate{
		SerialNumber: big.NewInt(s.serial), Subject: s.subject,
		NotBefore: s.notBefore, NotAfter: s.notAfter,
		BasicConstraintsValid: true, IsCA: s.ca, ExtraExtensions: s.ext,
		KeyUsage: x509.KeyUsageDigitalSignature,
	}
	if s.ca {
		t.KeyUsage = x509.KeyUsageCertSign | x509.KeyUsageCRLSign
	}
	if parent == nil {
		parent = t
	}
	der, err := x509.CreateCertificate(rand.Reader, t, parent, key, signer)
	if err != nil {
		return nil, err
	}
	return x509.ParseCertificate(der)
}
