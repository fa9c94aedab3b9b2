package snp_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/testkit"
)

// ParseEndorsementKey refuses a certificate whose key or AMD extensions
// are not those of a VCEK or VLEK (VCEK spec 57230): a key not on P-384, no
// structVersion or productName, a productName of another product, a VCEK
// without its hwID or with a csp_id, a VLEK with a hwID or without a
// csp_id.
func TestParseEndorsementKeyRefusals(t *testing.T) {
	t.Parallel()
	oid := func(arc ...int) asn1.ObjectIdentifier {
		return append(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1}, arc...)
	}
	ia5 := func(s string) []byte { b, _ := asn1.MarshalWithParams(s, "ia5"); return b }
	p384 := func() crypto.Signer { k, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader); return k }
	p256 := func() crypto.Signer { k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader); return k }
	hwid := sim.HWID(snp.Milan, testkit.DefaultChipID)
	vcek := func() []pkix.Extension {
		return sim.EndorsementExtensions(snp.Milan, sim.ProductName(snp.Milan), testkit.DefaultTCB, hwid, "")
	}
	vlek := func() []pkix.Extension {
		return sim.EndorsementExtensions(snp.Milan, "", testkit.DefaultTCB, nil, "CN=test-csp.example")
	}
	without := func(e []pkix.Extension, id asn1.ObjectIdentifier) []pkix.Extension {
		var out []pkix.Extension
		for _, x := range e {
			if !x.Id.Equal(id) {
				out = append(out, x)
			}
		}
		return out
	}
	with := func(e []pkix.Extension, id asn1.ObjectIdentifier, v []byte) []pkix.Extension {
		return append(without(e, id), pkix.Extension{Id: id, Value: v})
	}
	issuer := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "SEV-Milan"}}
	issuerVLEK := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "SEV-VLEK-Milan"}}
	issuerKey := p384()
	cert := func(cn string, parent *x509.Certificate, key crypto.Signer, ext []pkix.Extension) *x509.Certificate {
		t.Helper()
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: cn},
			NotBefore: time.Unix(1_700_000_000, 0), NotAfter: time.Unix(1_900_000_000, 0), ExtraExtensions: ext}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, parent, key.Public(), issuerKey)
		if err != nil {
			t.Fatal(err)
		}
		c, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		return c
	}
	for name, c := range map[string]*x509.Certificate{
		"VCEK": cert("SEV-VCEK", issuer, p384(), vcek()),
		"VLEK": cert("SEV-VLEK", issuerVLEK, p384(), vlek()),
	} {
		if _, err := snp.ParseEndorsementKey(c); err != nil {
			t.Fatalf("the genuine %s: %v", name, err)
		}
	}
	cases := map[string]*x509.Certificate{
		"a P-256 key":                  cert("SEV-VCEK", issuer, p256(), vcek()),
		"no structVersion":             cert("SEV-VCEK", issuer, p384(), without(vcek(), oid(1))),
		"no productName":               cert("SEV-VCEK", issuer, p384(), without(vcek(), oid(2))),
		"productName of another":       cert("SEV-VCEK", issuer, p384(), with(vcek(), oid(2), ia5("Genoa"))),
		"VCEK without hwID":            cert("SEV-VCEK", issuer, p384(), without(vcek(), oid(4))),
		"VCEK with a short hwID":       cert("SEV-VCEK", issuer, p384(), with(vcek(), oid(4), hwid[:8])),
		"VCEK with a csp_id":           cert("SEV-VCEK", issuer, p384(), with(vcek(), oid(5), ia5("CN=x"))),
		"VLEK with a hwID":             cert("SEV-VLEK", issuerVLEK, p384(), with(vlek(), oid(4), hwid)),
		"VLEK without csp_id":          cert("SEV-VLEK", issuerVLEK, p384(), without(vlek(), oid(5))),
		"VCEK issued by a VLEK's ASVK": cert("SEV-VCEK", issuerVLEK, p384(), vcek()),
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if ek, err := snp.ParseEndorsementKey(c); err == nil {
				t.Fatalf("accepted: %+v", ek)
			}
		})
	}
}
