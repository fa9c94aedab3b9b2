package testkit

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"sync"
	"time"

	"github.com/google/go-sev-guest/abi"
	sgtest "github.com/google/go-sev-guest/testing"

	"github.com/trustgate/trustgate/internal/attest"
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

// DefaultChipID is the CHIP_ID of DefaultReport (Turin uses bytes 0–7).
var DefaultChipID = func() (id [64]byte) {
	for i := range id {
		id[i] = byte(0xc0 + i%16)
	}
	return id
}()

// DefaultTCB is the REPORTED_TCB of DefaultReport.
var DefaultTCB = attest.TCB{Bootloader: 3, TEE: 1, SNP: 8, Microcode: 115, FMC: u8(2)}

func u8(v uint8) *uint8 { return &v }

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
		hwid = hwidOf(p, DefaultChipID)
	}
	var err error
	keys := sgtest.DefaultAmdKeys()
	if o.OwnKeys {
		if keys, err = generateKeys(); err != nil {
			return nil, err
		}
	}
	name := map[snp.Product]string{snp.Milan: "Milan-B0", snp.Genoa: "Genoa", snp.Turin: "Turin"}[p]
	vcekExt, vlekExt := endorsementExtensions(p, name, tcb, hwid, ""), endorsementExtensions(p, name, tcb, nil, "CN=test-csp.example")
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

func hwidOf(p snp.Product, chipID [64]byte) []byte {
	if p == snp.Turin {
		return chipID[:8]
	}
	return chipID[:]
}

// endorsementExtensions are the AMD extensions of a VCEK (hwid != nil) or
// VLEK (cspID != "") in the form AMD's KDS issues them for product p
// (VCEK spec 57230, "VCEK Certificate Extensions"; Turin: structVersion 1,
// fmcSPL, no spl_4).
func endorsementExtensions(p snp.Product, productName string, tcb attest.TCB, hwid []byte, cspID string) []pkix.Extension {
	oid := func(arc ...int) asn1.ObjectIdentifier {
		return append(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1}, arc...)
	}
	integer := func(v int) []byte { b, _ := asn1.Marshal(v); return b }
	ia5 := func(s string) []byte { b, _ := asn1.MarshalWithParams(s, "ia5"); return b }
	structVersion := 0
	if p == snp.Turin {
		structVersion = 1
	}
	if hwid == nil {
		productName = string(p) // VLEKs carry no stepping
	}
	exts := []pkix.Extension{
		{Id: oid(1), Value: integer(structVersion)},
		{Id: oid(2), Value: ia5(productName)},
		{Id: oid(3, 1), Value: integer(int(tcb.Bootloader))},
		{Id: oid(3, 2), Value: integer(int(tcb.TEE))},
		{Id: oid(3, 3), Value: integer(int(tcb.SNP))},
	}
	if p != snp.Turin {
		exts = append(exts, pkix.Extension{Id: oid(3, 4), Value: integer(0)})
	}
	exts = append(exts,
		pkix.Extension{Id: oid(3, 5), Value: integer(0)},
		pkix.Extension{Id: oid(3, 6), Value: integer(0)},
		pkix.Extension{Id: oid(3, 7), Value: integer(0)},
		pkix.Extension{Id: oid(3, 8), Value: integer(int(tcb.Microcode))})
	if p == snp.Turin && tcb.FMC != nil {
		exts = append(exts, pkix.Extension{Id: oid(3, 9), Value: integer(int(*tcb.FMC))})
	}
	if hwid != nil {
		exts = append(exts, pkix.Extension{Id: oid(4), Value: hwid}) // raw, as KDS does
	} else {
		exts = append(exts, pkix.Extension{Id: oid(5), Value: ia5(cspID)})
	}
	return exts
}

// ReportFields are the fields of a fake report; the zero value of a field
// means the default noted beside it.
type ReportFields struct {
	Version     uint32      // 0 means 5
	Policy      uint64      // 0 means 0x30000 (SMT allowed, reserved bit 17 set)
	VMPL        uint32      //
	Signer      snp.Signer  // "" means VCEK
	Measurement [48]byte    //
	ReportData  [64]byte    //
	HostData    [32]byte    //
	ReportedTCB *attest.TCB // nil means DefaultTCB
	ChipID      *[64]byte   // nil means DefaultChipID (Turin: bytes 0–7 only)
	// Mutate, when not nil, changes the finished report before it is
	// signed, for fields the others do not reach.
	Mutate func(report []byte)
}

// DebugPolicy is a guest policy with DEBUG allowed (bit 19).
const DebugPolicy uint64 = 0x30000 | 1<<19

// Report returns a raw SEV-SNP report with the given fields, signed by the
// chain's VCEK or VLEK (SEV-SNP ABI 56860, ATTESTATION_REPORT).
func (c *Chain) Report(f ReportFields) []byte {
	r := make([]byte, abi.ReportSize)
	le32 := binary.LittleEndian.PutUint32
	le64 := binary.LittleEndian.PutUint64
	version := f.Version
	if version == 0 {
		version = 5
	}
	policy := f.Policy
	if policy == 0 {
		policy = 0x30000
	}
	tcb := DefaultTCB
	if f.ReportedTCB != nil {
		tcb = *f.ReportedTCB
	}
	chip := DefaultChipID
	if f.ChipID != nil {
		chip = *f.ChipID
	}
	if c.Product == snp.Turin {
		clear(chip[8:])
	}
	raw := uint64(c.Product.EncodeTCB(tcb))
	le32(r[0x00:], version)
	le64(r[0x08:], policy)
	le32(r[0x30:], f.VMPL)
	le32(r[0x34:], abi.SignEcdsaP384Sha384)
	le64(r[0x38:], raw) // CURRENT_TCB
	le64(r[0x40:], 0x1) // PLATFORM_INFO: SMT enabled
	key := c.Signer.Keys.Vcek
	if f.Signer == snp.SignerVLEK {
		le32(r[0x48:], 1<<2)
		key = c.Signer.Keys.Vlek
	}
	copy(r[0x50:], f.ReportData[:])
	copy(r[0x90:], f.Measurement[:])
	copy(r[0xC0:], f.HostData[:])
	for i := 0x160; i < 0x180; i++ {
		r[i] = 0xff // REPORT_ID_MA: no migration agent
	}
	le64(r[0x180:], raw) // REPORTED_TCB
	if version >= 3 {
		fms := map[snp.Product][3]byte{snp.Milan: {0x19, 0x01, 0x01}, snp.Genoa: {0x19, 0x11, 0x01}, snp.Turin: {0x1A, 0x02, 0x01}}[c.Product]
		copy(r[0x188:], fms[:])
	}
	copy(r[0x1A0:], chip[:])
	le64(r[0x1E0:], raw)                     // COMMITTED_TCB
	r[0x1E8], r[0x1E9], r[0x1EA] = 30, 55, 1 // CURRENT_BUILD/MINOR/MAJOR 1.55.30
	r[0x1EC], r[0x1ED], r[0x1EE] = 30, 55, 1 // COMMITTED
	le64(r[0x1F0:], raw)                     // LAUNCH_TCB
	if f.Mutate != nil {
		f.Mutate(r)
	}
	Resign(r, key)
	return r
}

// Resign recomputes the signature of report r with key, as the AMD-SP
// would for bytes 0x000–0x29F.
func Resign(r []byte, key *ecdsa.PrivateKey) {
	h := crypto.SHA384.New()
	h.Write(r[:0x2A0])
	R, S, err := ecdsa.Sign(rand.Reader, key, h.Sum(nil))
	if err != nil {
		panic(fmt.Sprintf("testkit: signing: %v", err))
	}
	clear(r[0x2A0:])
	if err := abi.SetSignature(R, S, r); err != nil {
		panic(fmt.Sprintf("testkit: %v", err))
	}
}

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
