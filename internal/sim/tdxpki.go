package sim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"math/big"
	"strings"
	"time"

	"github.com/trustgate/trustgate/internal/tee/tdx"
)

// TDXChain is a test-only Intel-like PKI for TDX quotes: a root CA, a PCK
// Platform CA, a PCK certificate with SGX extensions, a TCB signing
// certificate, the QE (signing with the PCK key) and an attestation key.
// Quotes it makes and collateral it signs verify under its Roots exactly as
// Intel's do under the Intel SGX Root CA. The TDX simulator (TDXDevice) is
// one such chain with fixed keys; the test kit makes fresh ones.
type TDXChain struct {
	Roots *tdx.Roots

	Root, PCKCA, PCK, TCBSigning   *x509.Certificate
	rootKey, caKey, pckKey, tcbKey *ecdsa.PrivateKey
	AttKey                         *ecdsa.PrivateKey

	// What the PCK certificate certifies.
	FMSPC  [6]byte
	PCEID  [2]byte
	CPUSVN [16]byte
	PCESVN uint16
}

// TDXChainOptions shapes a TDXChain. The zero value is a chain of fresh
// random keys created an hour ago, valid for a year, whose PCK certifies
// DefaultTDXFMSPC, CPUSVN of all 2 and PCESVN 13.
type TDXChainOptions struct {
	Created time.Time
	// Validity is how long every certificate is valid from Created; 0
	// means a year.
	Validity time.Duration
	// Keys, when not nil, gives the five keys (root, PCK CA, PCK, TCB
	// signing, attestation key) instead of fresh random ones.
	Keys func(i int) (*ecdsa.PrivateKey, error)
	// PCKExtensions, when not nil, replaces the PCK's SGX extensions (the
	// DER of the extension's value) for tests of their parsing.
	PCKExtensions []byte
	// CAExpires and TCBSigningExpires, when not zero, end the PCK CA's and
	// the TCB signing certificate's validity (default: Validity after
	// Created, as every certificate of the chain).
	CAExpires, TCBSigningExpires time.Time
	// PCKCurve, when not nil, is the curve of a fresh PCK key (default
	// P-256), for tests of its refusal; the QE report signature such a
	// key makes is cut to 64 bytes and does not verify.
	PCKCurve elliptic.Curve
}

// DefaultTDXFMSPC is the FMSPC of a default fake PCK.
var DefaultTDXFMSPC = [6]byte{0x00, 0x90, 0x6e, 0xd5, 0x00, 0x00}

// NewTDXChain makes a fresh fake Intel PKI.
func NewTDXChain(o TDXChainOptions) (*TDXChain, error) {
	created := o.Created
	if created.IsZero() {
		created = time.Now().Add(-time.Hour)
	}
	c := &TDXChain{FMSPC: DefaultTDXFMSPC, PCESVN: 13}
	for i := range c.CPUSVN {
		c.CPUSVN[i] = 2
	}
	validity := o.Validity
	if validity == 0 {
		validity = 365 * 24 * time.Hour
	}
	newKey := o.Keys
	if newKey == nil {
		newKey = func(int) (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P256(), rand.Reader) }
	}
	keys := make([]*ecdsa.PrivateKey, 5)
	for i := range keys {
		k, err := newKey(i)
		if i == 2 && o.PCKCurve != nil && o.Keys == nil {
			k, err = ecdsa.GenerateKey(o.PCKCurve, rand.Reader)
		}
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	c.rootKey, c.caKey, c.pckKey, c.tcbKey, c.AttKey = keys[0], keys[1], keys[2], keys[3], keys[4]
	name := func(cn string) pkix.Name {
		return pkix.Name{CommonName: cn, Organization: []string{"Test Intel-like Corporation"}, Country: []string{"US"}}
	}
	notAfter := map[int64]time.Time{2: o.CAExpires, 3: o.TCBSigningExpires} // by serial
	mk := func(serial int64, subject string, key, signer *ecdsa.PrivateKey, parent *x509.Certificate, ca bool, ext []pkix.Extension) (*x509.Certificate, error) {
		until := created.Add(validity)
		if t := notAfter[serial]; !t.IsZero() {
			until = t
		}
		return certSpec{serial: serial, subject: name(subject), notBefore: created, notAfter: until, ca: ca, ext: ext}.issue(&key.PublicKey, signer, parent)
	}
	var err error
	if c.Root, err = mk(1, "Test SGX Root CA", c.rootKey, c.rootKey, nil, true, nil); err != nil {
		return nil, err
	}
	if c.PCKCA, err = mk(2, "Test SGX PCK Platform CA", c.caKey, c.rootKey, c.Root, true, nil); err != nil {
		return nil, err
	}
	if c.TCBSigning, err = mk(3, "Test SGX TCB Signing", c.tcbKey, c.rootKey, c.Root, false, nil); err != nil {
		return nil, err
	}
	extValue := o.PCKExtensions
	if extValue == nil {
		if extValue, err = c.sgxExtensions(); err != nil {
			return nil, err
		}
	}
	ext := []pkix.Extension{{Id: asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}, Value: extValue}}
	if c.PCK, err = mk(4, "Test SGX PCK Certificate", c.pckKey, c.caKey, c.PCKCA, false, ext); err != nil {
		return nil, err
	}
	if c.Roots, err = tdx.NewRoots(c.Root, c.TCBSigning); err != nil {
		return nil, err
	}
	return c, nil
}

type sgxExtension struct {
	ID    asn1.ObjectIdentifier
	Value any
}

// sgxExtensions is the DER of a PCK's SGX extensions (Intel SGX PCK
// Certificate and CRL Profile): PPID, TCB (16 components, PCESVN, CPUSVN),
// PCE-ID, FMSPC, SGX type.
func (c *TDXChain) sgxExtensions() ([]byte, error) {
	base := asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}
	oid := func(a ...int) asn1.ObjectIdentifier { return append(append(asn1.ObjectIdentifier{}, base...), a...) }
	var tcb []sgxExtension
	for i := 0; i < 16; i++ {
		tcb = append(tcb, sgxExtension{oid(2, i+1), int(c.CPUSVN[i])})
	}
	tcb = append(tcb, sgxExtension{oid(2, 17), int(c.PCESVN)}, sgxExtension{oid(2, 18), c.CPUSVN[:]})
	return asn1.Marshal([]sgxExtension{
		{oid(1), make([]byte, 16)},
		{oid(2), tcb},
		{oid(3), c.PCEID[:]},
		{oid(4), c.FMSPC[:]},
		{oid(5), asn1.Enumerated(0)},
	})
}

// TDXQuoteFields are the fields of a fake quote; zero values give a
// version 4 quote of a TD that is not debuggable, with TEE_TCB_SVN
// DefaultTEETCBSVN and MRTD of 48 bytes of 0x5a.
type TDXQuoteFields struct {
	Version    uint16 // 4 (default) or 5
	BodyType   uint16 // version 5: 2 (TDX 1.0) or 3 (TDX 1.5, default)
	TEETCBSVN  *[16]byte
	MRTD       *[48]byte
	RTMR       [4][48]byte
	ReportData [64]byte
	// TDAttributes is TD_ATTRIBUTES (bit 0 DEBUG).
	TDAttributes uint64
	// TEETCBSVN2 is TEE_TCB_SVN_2 of a TDX 1.5 body; nil means TEETCBSVN.
	TEETCBSVN2 *[16]byte
	// MRSignerSeam and SeamAttributes default to zero (Intel's modules).
	MRSignerSeam   [48]byte
	SeamAttributes uint64
	// QEISVSVN is the QE report's ISVSVN; 0 means 4.
	QEISVSVN uint16
	// QEReport, when not nil, changes the QE report before the PCK key
	// signs it: a QE that reported those bytes.
	QEReport func(r []byte)
	// Mutate, when not nil, changes the quote after it is signed, for
	// tests of what a signature must catch.
	Mutate func(q []byte)
	// Trailing bytes appended after the quote (ignored by verifiers).
	Trailing []byte
}

// DefaultTEETCBSVN is TEE_TCB_SVN of a default fake quote: TDX module SVN 3,
// major version 1.
var DefaultTEETCBSVN = [16]byte{3, 1, 2}

// TDQEMRSigner is the MRSIGNER of the fake QE (Intel's TD QE's).
var TDQEMRSigner, _ = hex.DecodeString("dc9e2a7c6f948f17474e34a7fc43ed030f7c1563f1babddf6340c82e0e54a8c5")

// Quote makes a quote signed by this chain's attestation key, whose QE
// report the PCK key signed.
func (c *TDXChain) Quote(f TDXQuoteFields) []byte {
	version := f.Version
	if version == 0 {
		version = 4
	}
	bodyType := f.BodyType
	if bodyType == 0 {
		bodyType = 3
		if version == 4 {
			bodyType = 2
		}
	}
	bodySize := tdx.Body10Size
	if bodyType == 3 {
		bodySize = tdx.Body15Size
	}
	body := make([]byte, bodySize)
	svn := DefaultTEETCBSVN
	if f.TEETCBSVN != nil {
		svn = *f.TEETCBSVN
	}
	copy(body[0:], svn[:])
	copy(body[0x40:], f.MRSignerSeam[:])
	binary.LittleEndian.PutUint64(body[0x70:], f.SeamAttributes)
	binary.LittleEndian.PutUint64(body[0x78:], f.TDAttributes)
	mrtd := [48]byte{}
	for i := range mrtd {
		mrtd[i] = 0x5a
	}
	if f.MRTD != nil {
		mrtd = *f.MRTD
	}
	copy(body[0x88:], mrtd[:])
	for i, r := range f.RTMR {
		copy(body[0x148+48*i:], r[:])
	}
	copy(body[0x208:], f.ReportData[:])
	if bodySize == tdx.Body15Size {
		svn2 := svn
		if f.TEETCBSVN2 != nil {
			svn2 = *f.TEETCBSVN2
		}
		copy(body[0x248:], svn2[:])
	}

	header := make([]byte, tdx.HeaderSize)
	binary.LittleEndian.PutUint16(header[0:], version)
	binary.LittleEndian.PutUint16(header[2:], 2)
	binary.LittleEndian.PutUint32(header[4:], 0x81)
	vendor, _ := hex.DecodeString("939a7233f79c4ca9940a0db3957f0607")
	copy(header[12:], vendor)
	signed := append([]byte{}, header...)
	if version == 5 {
		signed = binary.LittleEndian.AppendUint16(signed, bodyType)
		signed = binary.LittleEndian.AppendUint32(signed, uint32(bodySize))
	}
	signed = append(signed, body...)

	attPub := c.AttKey.PublicKey
	attXY := make([]byte, 64)
	attPub.X.FillBytes(attXY[:32])
	attPub.Y.FillBytes(attXY[32:])
	qeAuth := []byte("test QE authentication data....")
	qeReport := make([]byte, 384)
	qeReport[48] = 0x11 // ATTRIBUTES as Intel's TD QE identity expects
	copy(qeReport[128:], TDQEMRSigner)
	binary.LittleEndian.PutUint16(qeReport[256:], 2)
	isvsvn := f.QEISVSVN
	if isvsvn == 0 {
		isvsvn = 4
	}
	binary.LittleEndian.PutUint16(qeReport[258:], isvsvn)
	bind := sha256.Sum256(append(append([]byte{}, attXY...), qeAuth...))
	copy(qeReport[320:], bind[:])
	if f.QEReport != nil {
		f.QEReport(qeReport)
	}

	chain := append(append(append([]byte{}, pemCert(c.PCK)...), pemCert(c.PCKCA)...), pemCert(c.Root)...)
	var cd []byte // QE report certification data
	cd = append(cd, qeReport...)
	cd = append(cd, sign(c.pckKey, qeReport)...)
	cd = binary.LittleEndian.AppendUint16(cd, uint16(len(qeAuth)))
	cd = append(cd, qeAuth...)
	cd = binary.LittleEndian.AppendUint16(cd, 5)
	cd = binary.LittleEndian.AppendUint32(cd, uint32(len(chain)))
	cd = append(cd, chain...)

	var sd []byte
	sd = append(sd, sign(c.AttKey, signed)...)
	sd = append(sd, attXY...)
	sd = binary.LittleEndian.AppendUint16(sd, 6)
	sd = binary.LittleEndian.AppendUint32(sd, uint32(len(cd)))
	sd = append(sd, cd...)

	q := append(signed, binary.LittleEndian.AppendUint32(nil, uint32(len(sd)))...)
	q = append(q, sd...)
	if f.Mutate != nil {
		f.Mutate(q)
	}
	return append(q, f.Trailing...)
}

func pemCert(c *x509.Certificate) []byte {
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: c.Raw})
}

// sign is a raw r ‖ s ECDSA P-256 signature over SHA-256(msg).
func sign(k *ecdsa.PrivateKey, msg []byte) []byte {
	d := sha256.Sum256(msg)
	r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
	if err != nil {
		panic(err)
	}
	out := make([]byte, 64)
	for i, v := range []*big.Int{r, s} { // a key of a larger curve (TDXChainOptions.PCKCurve): low 32 bytes
		b := v.Bytes()
		b = b[max(0, len(b)-32):]
		copy(out[32*i+32-len(b):32*i+32], b)
	}
	return out
}

// TDXCollateralOptions shapes fake collateral. The zero value is current
// from an hour ago for a month, with one UpToDate platform level that the
// default quote and PCK meet, TDX module identity TDX_01 UpToDate from
// ISVSVN 3, a QE identity UpToDate from ISVSVN 4, and empty CRLs.
type TDXCollateralOptions struct {
	Issued time.Time
	// TCBInfo and QEIdentity, when not nil, change the documents (as JSON
	// objects) before they are signed.
	TCBInfo    func(m map[string]any)
	QEIdentity func(m map[string]any)
	// RevokedByCA and RevokedByRoot are serials the PCK CA's and the
	// root's CRLs list.
	RevokedByCA, RevokedByRoot []*big.Int
	// SignWith signs TCB info and QE identity with another key (a forger).
	SignWith *ecdsa.PrivateKey
}

// TDXCollateral is fake Intel PCS collateral: the documents in the forms
// `trustgate verify --collateral` reads.
type TDXCollateral struct {
	TCBInfo, QEIdentity []byte // JSON
	PCKCRL, RootCRL     []byte // DER
}

// Docs returns the collateral's documents.
func (c *TDXCollateral) Docs() [][]byte {
	return [][]byte{c.TCBInfo, c.QEIdentity, c.PCKCRL, c.RootCRL}
}

// Collateral makes collateral for this chain's platform.
func (c *TDXChain) Collateral(o TDXCollateralOptions) (*TDXCollateral, error) {
	issued := o.Issued
	if issued.IsZero() {
		issued = time.Now().Add(-time.Hour)
	}
	next := issued.Add(30 * 24 * time.Hour)
	ts := func(t time.Time) string { return t.UTC().Format(time.RFC3339) }
	comps := func(v int) []any {
		out := make([]any, 16)
		for i := range out {
			out[i] = map[string]any{"svn": v}
		}
		return out
	}
	tdxComps := func(first ...int) []any {
		out := comps(0)
		for i, v := range first {
			out[i] = map[string]any{"svn": v}
		}
		return out
	}
	zero48 := strings.Repeat("00", 48)
	tcbInfo := map[string]any{
		"id": "TDX", "version": 3, "issueDate": ts(issued), "nextUpdate": ts(next),
		"fmspc": strings.ToUpper(hex.EncodeToString(c.FMSPC[:])), "pceId": hex.EncodeToString(c.PCEID[:]),
		"tcbType": 0, "tcbEvaluationDataNumber": 18,
		"tdxModule": map[string]any{"mrsigner": zero48, "attributes": "0000000000000000", "attributesMask": "FFFFFFFFFFFFFFFF"},
		"tdxModuleIdentities": []any{map[string]any{
			"id": "TDX_01", "mrsigner": zero48, "attributes": "0000000000000000", "attributesMask": "FFFFFFFFFFFFFFFF",
			"tcbLevels": []any{
				map[string]any{"tcb": map[string]any{"isvsvn": 3}, "tcbDate": "2025-01-01T00:00:00Z", "tcbStatus": "UpToDate"},
				map[string]any{"tcb": map[string]any{"isvsvn": 1}, "tcbDate": "2024-01-01T00:00:00Z", "tcbStatus": "OutOfDate", "advisoryIDs": []any{"INTEL-SA-00001"}},
			},
		}},
		"tcbLevels": []any{
			map[string]any{"tcb": map[string]any{"sgxtcbcomponents": comps(2), "pcesvn": 13, "tdxtcbcomponents": tdxComps(3, 1, 2)},
				"tcbDate": "2025-01-01T00:00:00Z", "tcbStatus": "UpToDate"},
			map[string]any{"tcb": map[string]any{"sgxtcbcomponents": comps(1), "pcesvn": 11, "tdxtcbcomponents": tdxComps(1, 1, 1)},
				"tcbDate": "2024-01-01T00:00:00Z", "tcbStatus": "OutOfDate", "advisoryIDs": []any{"INTEL-SA-00002"}},
		},
	}
	qeID := map[string]any{
		"id": "TD_QE", "version": 2, "issueDate": ts(issued), "nextUpdate": ts(next), "tcbEvaluationDataNumber": 18,
		"miscselect": "00000000", "miscselectMask": "FFFFFFFF",
		"attributes": "11000000000000000000000000000000", "attributesMask": "FBFFFFFFFFFFFFFF0000000000000000",
		"mrsigner": strings.ToUpper(hex.EncodeToString(TDQEMRSigner)), "isvprodid": 2,
		"tcbLevels": []any{
			map[string]any{"tcb": map[string]any{"isvsvn": 4}, "tcbDate": "2025-01-01T00:00:00Z", "tcbStatus": "UpToDate"},
			map[string]any{"tcb": map[string]any{"isvsvn": 2}, "tcbDate": "2024-01-01T00:00:00Z", "tcbStatus": "OutOfDate"},
		},
	}
	if o.TCBInfo != nil {
		o.TCBInfo(tcbInfo)
	}
	if o.QEIdentity != nil {
		o.QEIdentity(qeID)
	}
	key := c.tcbKey
	if o.SignWith != nil {
		key = o.SignWith
	}
	doc := func(name string, body map[string]any) ([]byte, error) {
		b, err := json.Marshal(body)
		if err != nil {
			return nil, err
		}
		return []byte(fmt.Sprintf(`{"%s":%s,"signature":"%s"}`, name, b, hex.EncodeToString(sign(key, b)))), nil
	}
	out := &TDXCollateral{}
	var err error
	if out.TCBInfo, err = doc("tcbInfo", tcbInfo); err != nil {
		return nil, err
	}
	if out.QEIdentity, err = doc("enclaveIdentity", qeID); err != nil {
		return nil, err
	}
	crl := func(issuer *x509.Certificate, key *ecdsa.PrivateKey, serials []*big.Int) ([]byte, error) {
		var entries []x509.RevocationListEntry
		for _, s := range serials {
			entries = append(entries, x509.RevocationListEntry{SerialNumber: s, RevocationTime: issued})
		}
		return x509.CreateRevocationList(rand.Reader, &x509.RevocationList{
			Number: big.NewInt(1), ThisUpdate: issued, NextUpdate: next, RevokedCertificateEntries: entries,
		}, issuer, key)
	}
	if out.PCKCRL, err = crl(c.PCKCA, c.caKey, o.RevokedByCA); err != nil {
		return nil, err
	}
	if out.RootCRL, err = crl(c.Root, c.rootKey, o.RevokedByRoot); err != nil {
		return nil, err
	}
	return out, nil
}
