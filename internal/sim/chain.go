package sim

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"math/big"
	"time"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/testing/data"
	"github.com/google/uuid"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/snp"
)

// ARKKey returns the simulator's AMD root key, the key a --dev-simulator
// verifier trusts.
func ARKKey() *rsa.PublicKey { return &data.ARKPrivateKey.PublicKey }

// chain is a simulated AMD chain of one product: ARK and ASK under
// go-sev-guest's test-only AMD keys (its testing/data package, which holds
// the keys and nothing of Go's testing package), and a VCEK certifying one
// chip and TCB. The certificates have AMD's names and extensions (VCEK spec
// 57230), so a verifier treats them as it treats AMD's.
type chain struct {
	product        snp.Product
	ark, ask, vcek []byte // DER
	vcekKey        *ecdsa.PrivateKey
}

// newChain issues the chain at created: ARK and ASK valid for 25 years, the
// VCEK for 7, as AMD issues them.
func newChain(p snp.Product, created time.Time, chipID [64]byte, tcb attest.TCB) (*chain, error) {
	name := func(cn string) pkix.Name {
		return pkix.Name{Country: []string{"US"}, Province: []string{"CA"}, Locality: []string{"Santa Clara"},
			Organization: []string{"Advanced Micro Devices"}, OrganizationalUnit: []string{"Engineering"}, CommonName: cn}
	}
	ca := func(serial int64, cn string, years int) *x509.Certificate {
		return &x509.Certificate{
			SerialNumber: big.NewInt(serial), Subject: name(cn), NotBefore: created, NotAfter: created.AddDate(years, 0, 0),
			SignatureAlgorithm: x509.SHA384WithRSAPSS, IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		}
	}
	arkTmpl := ca(0xa4, "ARK-"+string(p), 25)
	ark, err := x509.CreateCertificate(rand.Reader, arkTmpl, arkTmpl, &data.ARKPrivateKey.PublicKey, data.ARKPrivateKey)
	if err != nil {
		return nil, fmt.Errorf("ARK: %w", err)
	}
	askTmpl := ca(0xa5, "SEV-"+string(p), 25)
	ask, err := x509.CreateCertificate(rand.Reader, askTmpl, arkTmpl, &data.ASKPrivateKey.PublicKey, data.ARKPrivateKey)
	if err != nil {
		return nil, fmt.Errorf("ASK: %w", err)
	}
	vcekTmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: name("SEV-VCEK"), NotBefore: created, NotAfter: created.AddDate(7, 0, 0),
		SignatureAlgorithm: x509.SHA384WithRSAPSS,
		ExtraExtensions:    EndorsementExtensions(p, ProductName(p), tcb, HWID(p, chipID), ""),
	}
	vcek, err := x509.CreateCertificate(rand.Reader, vcekTmpl, askTmpl, &data.VCEKPrivateKey.PublicKey, data.ASKPrivateKey)
	if err != nil {
		return nil, fmt.Errorf("VCEK: %w", err)
	}
	return &chain{product: p, ark: ark, ask: ask, vcek: vcek, vcekKey: data.VCEKPrivateKey}, nil
}

// certTable is the extended report's certificate table (GHCB 56421
// §4.1.8.1) holding the chain's ARK, ASK and VCEK.
func (c *chain) certTable() []byte {
	return (&abi.CertTable{Entries: []abi.CertTableEntry{
		{GUID: uuid.MustParse(abi.ArkGUID), RawCert: c.ark},
		{GUID: uuid.MustParse(abi.AskGUID), RawCert: c.ask},
		{GUID: uuid.MustParse(abi.VcekGUID), RawCert: c.vcek},
	}}).Marshal()
}
