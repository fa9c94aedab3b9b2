package snp

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/asn1"
	"encoding/binary"
	"fmt"
	"strings"

	"crypto/x509"

	"github.com/trustgate/trustgate/internal/attest"
)

// Signer names the kind of endorsement key that signed a report: the
// chip-unique VCEK or the cloud provider's VLEK (SEV-SNP ABI 56860,
// ATTESTATION_REPORT SIGNING_KEY).
type Signer string

// Signer values as they appear in claims.
const (
	SignerVCEK Signer = "vcek"
	SignerVLEK Signer = "vlek"
)

// amdOID is AMD's arc for the VCEK/VLEK certificate extensions,
// 1.3.6.1.4.1.3704.1 (VCEK spec 57230 "VCEK Certificate Extensions";
// VLEK spec 58369).
var amdOID = asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1}

// EndorsementKey is a parsed VCEK or VLEK certificate: who issued it (and
// so its product line), what it certifies (TCB, chip or cloud provider) and
// its P-384 public key. Parsing does not verify anything.
type EndorsementKey struct {
	Cert    *x509.Certificate
	Key     *ecdsa.PublicKey
	Signer  Signer
	Product Product // from the issuer: "SEV-<P>" (ASK) or "SEV-VLEK-<P>" (ASVK)

	StructVersion int    // 0 Milan/Genoa, 1 Turin
	ProductName   string // e.g. "Milan-B0", "Genoa", "Turin"
	// TCB is the certified TCB_VERSION composed in the product's layout,
	// reserved SPLs included; it must equal the report's REPORTED_TCB.
	TCB   TCBVersion
	HWID  []byte // VCEK only: 64 bytes, or CHIP_ID[0:8] on Turin
	CSPID string // VLEK only: the cloud provider, e.g. "CN=cc-us-east-2.amazonaws.com"
}

// ParseEndorsementKey parses a VCEK or VLEK certificate and its AMD
// extensions. Unlike go-sev-guest v0.15.0 it understands the Turin VCEK
// (structVersion 1, fmcSPL OID .3.9, no spl_4, 8-byte hwID). An unknown
// AMD SPL extension (.3.x) is refused: a TCB component we cannot compare
// would make the TCB check incomplete.
func ParseEndorsementKey(cert *x509.Certificate) (*EndorsementKey, error) {
	ek := &EndorsementKey{Cert: cert}
	pub, ok := cert.PublicKey.(*ecdsa.PublicKey)
	if !ok || pub.Curve != elliptic.P384() {
		return nil, fmt.Errorf("endorsement key is not an ECDSA P-384 key")
	}
	ek.Key = pub

	issuer := cert.Issuer.CommonName
	switch cn := cert.Subject.CommonName; {
	case cn == "SEV-VCEK" && strings.HasPrefix(issuer, "SEV-") && !strings.HasPrefix(issuer, "SEV-VLEK-"):
		ek.Signer = SignerVCEK
		issuer = strings.TrimPrefix(issuer, "SEV-")
	case cn == "SEV-VLEK" && strings.HasPrefix(issuer, "SEV-VLEK-"):
		ek.Signer = SignerVLEK
		issuer = strings.TrimPrefix(issuer, "SEV-VLEK-")
	default:
		return nil, fmt.Errorf("certificate %q issued by %q is not an AMD VCEK or VLEK", cn, cert.Issuer.CommonName)
	}
	p, err := ParseProduct(issuer)
	if err != nil {
		return nil, fmt.Errorf("endorsement key issuer: %w", err)
	}
	ek.Product = p

	spl := map[int]uint8{} // SPL extension minor number (.3.N) -> value
	var haveStruct, haveName bool
	for _, ext := range cert.Extensions {
		id := ext.Id
		if len(id) <= len(amdOID) || !id[:len(amdOID)].Equal(amdOID) {
			continue
		}
		sub := id[len(amdOID):]
		switch {
		case len(sub) == 1 && sub[0] == 1:
			v, err := asn1Uint8(ext.Value)
			if err != nil {
				return nil, fmt.Errorf("structVersion: %w", err)
			}
			ek.StructVersion, haveStruct = int(v), true
		case len(sub) == 1 && sub[0] == 2:
			if ek.ProductName, err = asn1IA5(ext.Value); err != nil {
				return nil, fmt.Errorf("productName: %w", err)
			}
			haveName = true
		case len(sub) == 2 && sub[0] == 3 && sub[1] >= 1 && sub[1] <= 9:
			v, err := asn1Uint8(ext.Value)
			if err != nil {
				return nil, fmt.Errorf("SPL %v: %w", id, err)
			}
			spl[sub[1]] = v
		case len(sub) >= 1 && sub[0] == 3:
			return nil, fmt.Errorf("unknown AMD TCB extension %v", id)
		case len(sub) == 1 && sub[0] == 4:
			// hwID: the raw chip id with no DER tag (VCEK spec 57230); accept
			// an OCTET STRING too should AMD ever add the tag.
			ek.HWID = ext.Value
			var octets []byte
			if rest, err := asn1.Unmarshal(ext.Value, &octets); err == nil && len(rest) == 0 && (len(octets) == 64 || len(octets) == 8) {
				ek.HWID = octets
			}
		case len(sub) == 1 && sub[0] == 5:
			if ek.CSPID, err = asn1IA5(ext.Value); err != nil {
				return nil, fmt.Errorf("csp_id: %w", err)
			}
		}
	}
	if !haveStruct || !haveName {
		return nil, fmt.Errorf("missing structVersion or productName extension")
	}
	if !strings.HasPrefix(ek.ProductName, string(ek.Product)) {
		return nil, fmt.Errorf("productName %q does not match issuer product %s", ek.ProductName, ek.Product)
	}
	switch ek.Signer {
	case SignerVCEK:
		want := 64
		if ek.Product == Turin {
			want = 8
		}
		if len(ek.HWID) != want || ek.CSPID != "" {
			return nil, fmt.Errorf("VCEK must carry a %d-byte hwID and no csp_id", want)
		}
	case SignerVLEK:
		if ek.HWID != nil || ek.CSPID == "" {
			return nil, fmt.Errorf("VLEK must carry a csp_id and no hwID")
		}
	}
	tcb, err := composeCertTCB(ek.Product, spl)
	if err != nil {
		return nil, err
	}
	ek.TCB = tcb
	return ek, nil
}

// composeCertTCB builds the TCB_VERSION a certificate certifies from its SPL
// extensions: .3.1 blSPL, .3.2 teeSPL, .3.3 snpSPL, .3.4–.3.7 reserved
// (spl_4..spl_7), .3.8 ucodeSPL, .3.9 fmcSPL (Turin).
func composeCertTCB(p Product, spl map[int]uint8) (TCBVersion, error) {
	need := []int{1, 2, 3, 8}
	if p == Turin {
		need = append(need, 9)
	}
	for _, n := range need {
		if _, ok := spl[n]; !ok {
			return 0, fmt.Errorf("%s endorsement key lacks SPL extension .3.%d", p, n)
		}
	}
	fmc := spl[9]
	t := attest.TCB{Bootloader: spl[1], TEE: spl[2], SNP: spl[3], Microcode: spl[8], FMC: &fmc}
	v := p.EncodeTCB(t)
	if p == Turin {
		// Turin has no room for spl_4..spl_7 in TCB_VERSION; they must be 0.
		for n := 4; n <= 7; n++ {
			if spl[n] != 0 {
				return 0, fmt.Errorf("Turin endorsement key has non-zero reserved SPL .3.%d", n)
			}
		}
		if _, ok := spl[9]; !ok {
			return 0, fmt.Errorf("Turin endorsement key lacks fmcSPL")
		}
		return v, nil
	}
	if _, ok := spl[9]; ok {
		return 0, fmt.Errorf("%s endorsement key carries an fmcSPL", p)
	}
	// Milan/Genoa: spl_4..spl_7 sit in bytes 2..5 of TCB_VERSION.
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], uint64(v))
	for n := 4; n <= 7; n++ {
		b[n-2] = spl[n]
	}
	return TCBVersion(binary.LittleEndian.Uint64(b[:])), nil
}

func asn1Uint8(der []byte) (uint8, error) {
	var i int64
	rest, err := asn1.Unmarshal(der, &i)
	if err != nil {
		return 0, err
	}
	if len(rest) != 0 || i < 0 || i > 255 {
		return 0, fmt.Errorf("not an INTEGER in 0..255")
	}
	return uint8(i), nil
}

func asn1IA5(der []byte) (string, error) {
	if len(der) == 0 || der[0] != asn1.TagIA5String {
		return "", fmt.Errorf("not an IA5String")
	}
	var s string
	rest, err := asn1.UnmarshalWithParams(der, &s, "ia5")
	if err != nil {
		return "", err
	}
	if len(rest) != 0 {
		return "", fmt.Errorf("trailing bytes after IA5String")
	}
	return s, nil
}
