package testkit

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"sync"
	"time"

	sgtest "github.com/google/go-sev-guest/testing"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/tee/snp"
)

// ChainOptions shapes a fake AMD certificate chain. The zero value is a
// Milan chain created an hour ago whose VCEK certifies ChipID and TCB of
// DefaultReport.
type ChainOptions struct {
	Product snp.Product // "" means Milan
	// Created is when ARK, ASK, ASVK and the endorsement keys were issued;
	// the zero value means an hour ago. VCEKs last 7 years.
	Created time.Time
	// OwnKeys replaces go-sev-guest's test keys by freshly generated ones
	// (a "self-made" AMD chain: ARK, ASK, ASVK, VCEK and VLEK).
	OwnKeys bool
	// CertTCB and CertHWID are what the endorsement keys certify; nil means
	// DefaultTCB and DefaultChipID.
	CertTCB  *attest.TCB
	CertHWID []byte
	// Extensions, when not nil, changes the AMD extensions of the VCEK and
	// VLEK (VCEK spec 57230) before they are signed, for tests of the
	// certificate checks; it gets them in the form the KDS issues.
	Extensions func([]pkix.Extension) []pkix.Extension
}

// Chain is a fake AMD chain and its keys.
type Chain struct {
	Product snp.Product
	Signer  *sgtest.AmdSigner
	Roots   *snp.Roots // pins this chain's ARK, ASK and ASVK
}

// The fields and defaults of fake reports are the simulator's, which writes
// and signs the report layout.
type ReportFields = sim.ReportFields

var (
	DefaultChipID = sim.DefaultChipID // CHIP_ID of a default report
	DefaultTCB    = sim.DefaultTCB    // REPORTED_TCB of a default report
)

// DebugPolicy is a guest policy with DEBUG allowed (bit 19).
const DebugPolicy = sim.DebugPolicy

// NewChain builds a fake AMD chain.
func NewChain(o ChainOptions) (*Chain, error) {
	p := o.Product
	if p == "" {
		p = snp.Milan
	}
	created := o.Created
	if created.IsZero() {
		created = time.Now().Add(-time.Hour)
	}
	tcb := DefaultTCB
	if o.CertTCB != nil {
		tcb = *o.CertTCB
	}
	hwid := o.CertHWID
	if hwid == nil {
		hwid = sim.HWID(p, DefaultChipID)
	}
	var err error
	keys := sgtest.DefaultAmdKeys()
	if o.OwnKeys {
		if keys, err = generateKeys(); err != nil {
			return nil, err
		}
	}
	name := sim.ProductName(p)
	vcekExt, vlekExt := sim.EndorsementExtensions(p, name, tcb, hwid, ""), sim.EndorsementExtensions(p, name, tcb, nil, "CN=test-csp.example")
	if o.Extensions != nil {
		vcekExt, vlekExt = o.Extensions(vcekExt), o.Extensions(vlekExt)
	}
	b := &sgtest.AmdSignerBuilder{
		Keys: keys, ProductName: name, CSPID: "CN=test-csp.example",
		ArkCreationTime: created, AskCreationTime: created, AsvkCreationTime: created,
		VcekCreationTime: created, VlekCreationTime: created,
		VcekCustom: sgtest.CertOverride{Extensions: vcekExt},
		VlekCustom: sgtest.CertOverride{Extensions: vlekExt},
	}
	// go-sev-guest's fake signer draws from one shared math/rand source
	// that is not safe for concurrent use.
	signerMu.Lock()
	s, err := b.TestOnlyCertChain()
	signerMu.Unlock()
	if err != nil {
		return nil, err
	}
	roots, err := snp.NewRoots(map[snp.Product]snp.ProductRoots{p: {ARK: s.Ark, ASK: s.Ask, ASVK: s.Asvk}})
	if err != nil {
		return nil, err
	}
	return &Chain{Product: p, Signer: s, Roots: roots}, nil
}

var signerMu sync.Mutex

func generateKeys() (*sgtest.AmdKeys, error) {
	var k sgtest.AmdKeys
	for _, rk := range []**rsa.PrivateKey{&k.Ark, &k.Ask, &k.Asvk} {
		key, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		*rk = key
	}
	for _, ek := range []**ecdsa.PrivateKey{&k.Vcek, &k.Vlek} {
		key, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		if err != nil {
			return nil, err
		}
		*ek = key
	}
	return &k, nil
}

// Report returns a raw SEV-SNP report with the given fields, signed by the
// chain's VCEK or VLEK (SEV-SNP ABI 56860, ATTESTATION_REPORT).
func (c *Chain) Report(f ReportFields) []byte {
	key := c.Signer.Keys.Vcek
	if f.Signer == snp.SignerVLEK {
		key = c.Signer.Keys.Vlek
	}
	return f.Sign(c.Product, key)
}

// Resign recomputes the signature of report r with key.
func Resign(r []byte, key *ecdsa.PrivateKey) { sim.Resign(r, key) }

// VCEK returns the chain's VCEK certificate (DER).
func (c *Chain) VCEK() []byte { return c.Signer.Vcek.Raw }

// VLEK returns the chain's VLEK certificate (DER).
func (c *Chain) VLEK() []byte { return c.Signer.Vlek.Raw }

// CertTable returns a GHCB certificate table holding the chain's ARK, ASK,
// VCEK, VLEK and ASVK.
func (c *Chain) CertTable() []byte {
	t, err := c.Signer.CertTableBytes()
	if err != nil {
		panic(fmt.Sprintf("testkit: %v", err))
	}
	return t
}

// Cert parses DER, for tests that need a certificate object.
func Cert(der []byte) *x509.Certificate {
	c, err := x509.ParseCertificate(der)
	if err != nil {
		panic(err)
	}
	return c
}
