package testkit

import (
	"crypto"
	"crypto/rand"
	"crypto/x509"
	"math/big"
	"time"
)

// NewCRL makes a DER X.509 CRL as AMD's KDS serves it (VCEK spec 57230
// ch. 4: issued by the ARK, RSASSA-PSS with SHA-384) listing serials,
// signed by key under issuer's name. number is the CRL number.
func NewCRL(issuer *x509.Certificate, key crypto.Signer, number int64, thisUpdate, nextUpdate time.Time, serials ...*big.Int) ([]byte, error) {
	tmpl := &x509.RevocationList{
		SignatureAlgorithm: x509.SHA384WithRSAPSS,
		Number:             big.NewInt(number),
		ThisUpdate:         thisUpdate,
		NextUpdate:         nextUpdate,
	}
	for _, s := range serials {
		tmpl.RevokedCertificateEntries = append(tmpl.RevokedCertificateEntries,
			x509.RevocationListEntry{SerialNumber: s, RevocationTime: thisUpdate})
	}
	return x509.CreateRevocationList(rand.Reader, tmpl, issuer, key)
}

// CRL makes a CRL signed by the chain's ARK listing serials, valid from
// thisUpdate to nextUpdate.
func (c *Chain) CRL(number int64, thisUpdate, nextUpdate time.Time, serials ...*big.Int) ([]byte, error) {
	return NewCRL(c.Signer.Ark, c.Signer.Keys.Ark, number, thisUpdate, nextUpdate, serials...)
}
