package sim

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha512"
	"crypto/x509"
	"crypto/x509/pkix"
	"fmt"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/trustgate/trustgate/internal/tee/nitro"
)

// NitroPKI is a test-only AWS-like Nitro PKI: a root, an intermediate CA
// (AWS sends a regional, a zonal and an instance CA) and the leaf whose key
// signs documents, all ECDSA P-384. Documents it signs verify under its
// Roots exactly as AWS's do under the AWS Nitro Enclaves Root-G1. The Nitro
// simulator (NitroDevice) is one such PKI with fixed keys; the test kit
// makes fresh ones.
type NitroPKI struct {
	Roots *nitro.Roots

	Root, CA, Leaf *x509.Certificate
	rootKey, caKey *ecdsa.PrivateKey
	// LeafKey signs documents.
	LeafKey *ecdsa.PrivateKey
}

// NitroPKIOptions shapes a NitroPKI. The zero value is a PKI of fresh
// random keys created an hour ago, every certificate valid for a year.
type NitroPKIOptions struct {
	Created time.Time
	// Validity is how long every certificate is valid from Created; 0
	// means a year.
	Validity time.Duration
	// Keys, when not nil, gives the three keys (root, CA, leaf) instead
	// of fresh random ones.
	Keys func(i int) (*ecdsa.PrivateKey, error)
	// LeafCurve, when not nil, is the curve of a fresh leaf key (default
	// P-384), for tests of its refusal.
	LeafCurve elliptic.Curve
	// LeafExpires, when not zero, ends the leaf's validity.
	LeafExpires time.Time
}

// NewNitroPKI makes a fresh fake Nitro PKI.
func NewNitroPKI(o NitroPKIOptions) (*NitroPKI, error) {
	created := o.Created
	if created.IsZero() {
		created = time.Now().Add(-time.Hour)
	}
	validity := o.Validity
	if validity == 0 {
		validity = 365 * 24 * time.Hour
	}
	newKey := o.Keys
	if newKey == nil {
		newKey = func(int) (*ecdsa.PrivateKey, error) { return ecdsa.GenerateKey(elliptic.P384(), rand.Reader) }
	}
	keys := make([]*ecdsa.PrivateKey, 3)
	for i := range keys {
		k, err := newKey(i)
		if i == 2 && o.LeafCurve != nil && o.Keys == nil {
			k, err = ecdsa.GenerateKey(o.LeafCurve, rand.Reader)
		}
		if err != nil {
			return nil, err
		}
		keys[i] = k
	}
	p := &NitroPKI{rootKey: keys[0], caKey: keys[1], LeafKey: keys[2]}
	mk := func(serial int64, cn string, key, signer *ecdsa.PrivateKey, parent *x509.Certificate, ca bool, until time.Time) (*x509.Certificate, error) {
		name := pkix.Name{CommonName: cn, Organization: []string{"Test Nitro-like"}, Country: []string{"US"}}
		return certSpec{serial: serial, subject: name, notBefore: created, notAfter: until, ca: ca}.issue(&key.PublicKey, signer, parent)
	}
	end := created.Add(validity)
	leafEnd := end
	if !o.LeafExpires.IsZero() {
		leafEnd = o.LeafExpires
	}
	var err error
	if p.Root, err = mk(1, "test.nitro-enclaves", p.rootKey, p.rootKey, nil, true, end); err != nil {
		return nil, err
	}
	if p.CA, err = mk(2, "test-zone.nitro-enclaves", p.caKey, p.rootKey, p.Root, true, end); err != nil {
		return nil, err
	}
	if p.Leaf, err = mk(3, "i-test-enc01.test-zone.nitro-enclaves", p.LeafKey, p.caKey, p.CA, false, leafEnd); err != nil {
		return nil, err
	}
	if p.Roots, err = nitro.NewRoots(p.Root); err != nil {
		return nil, err
	}
	return p, nil
}

// NitroDocument is what a simulated NSM attests.
type NitroDocument struct {
	ModuleID  string    // "" means "i-0123456789abcdef0-enc0123456789abcdef"
	Timestamp time.Time // zero means now
	// PCRs by index; nil means NitroPCRs(DefaultMeasurement).
	PCRs                       map[int][]byte
	PublicKey, UserData, Nonce []byte // nil: CBOR null
}

// NitroPCRs returns the sixteen PCRs of a production-like enclave whose
// image measures pcr0: PCR1 and PCR2 derived from it, the others zero.
func NitroPCRs(pcr0 [48]byte) map[int][]byte {
	m := make(map[int][]byte, 16)
	for i := range 16 {
		m[i] = make([]byte, nitro.PCRSize)
	}
	m[0] = pcr0[:]
	for i := 1; i <= 2; i++ {
		h := sha512.Sum384(append([]byte{byte(i)}, pcr0[:]...))
		m[i] = h[:]
	}
	return m
}

// Payload returns d's payload as a CBOR map the tests may change before
// Sign: the document's nine fields, the certificate the leaf's and the
// cabundle the root and the CA.
func (p *NitroPKI) Payload(d NitroDocument) map[string]any {
	if d.ModuleID == "" {
		d.ModuleID = "i-0123456789abcdef0-enc0123456789abcdef"
	}
	if d.Timestamp.IsZero() {
		d.Timestamp = time.Now()
	}
	if d.PCRs == nil {
		d.PCRs = NitroPCRs(DefaultMeasurement)
	}
	pcrs := make(map[uint64][]byte, len(d.PCRs))
	for i, v := range d.PCRs {
		pcrs[uint64(i)] = v
	}
	orNull := func(b []byte) any {
		if b == nil {
			return nil
		}
		return b
	}
	return map[string]any{
		"module_id": d.ModuleID, "timestamp": uint64(d.Timestamp.UnixMilli()), "digest": "SHA384",
		"pcrs": pcrs, "certificate": p.Leaf.Raw, "cabundle": [][]byte{p.Root.Raw, p.CA.Raw},
		"public_key": orNull(d.PublicKey), "user_data": orNull(d.UserData), "nonce": orNull(d.Nonce),
	}
}

// Sign encodes payload as CBOR and signs it as the NSM does: an untagged
// COSE_Sign1, ES384 by the leaf key.
func (p *NitroPKI) Sign(payload any) ([]byte, error) {
	b, err := cbor.Marshal(payload)
	if err != nil {
		return nil, err
	}
	return SignCOSE(p.LeafKey, cose.AlgorithmES384, b)
}

// Document signs d's payload.
func (p *NitroPKI) Document(d NitroDocument) ([]byte, error) { return p.Sign(p.Payload(d)) }

// SignCOSE makes an untagged COSE_Sign1 over payload with key under alg.
func SignCOSE(key *ecdsa.PrivateKey, alg cose.Algorithm, payload []byte) ([]byte, error) {
	signer, err := cose.NewSigner(alg, key)
	if err != nil {
		return nil, fmt.Errorf("COSE signer: %w", err)
	}
	return cose.Sign1Untagged(rand.Reader, signer, cose.Headers{Protected: cose.ProtectedHeader{cose.HeaderLabelAlgorithm: alg}}, payload, nil)
}
