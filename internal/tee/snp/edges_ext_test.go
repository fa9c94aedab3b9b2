package snp_test

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/asn1"
	"math/big"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/testkit"
)

// A version 3 report names its CPU (CPUID_FAM_ID, CPUID_MOD_ID), as
// versions 4 and 5 do: a Turin CPU's report with a Milan key is refused for
// the product, and with no key at hand only the CPU's product line is asked
// for (a version 2 report would try Milan and Genoa).
func TestVersion3ReportsNameTheirCPU(t *testing.T) {
	t.Parallel()
	milan := mustChain(t, testkit.ChainOptions{})
	turin := mustChain(t, testkit.ChainOptions{Product: snp.Turin})
	genoa := mustChain(t, testkit.ChainOptions{Product: snp.Genoa})

	_, err := verify(milan, snp.Evidence{Report: turin.Report(testkit.ReportFields{Version: 3}), EndorsementKey: milan.VCEK()}, snp.Options{})
	wantReason(t, err, attest.ReasonCertChainInvalid)
	if d := attest.Detail(err); !strings.Contains(d, "Turin") {
		t.Errorf("detail %q does not name the report's CPU", d)
	}

	_, err = verify(genoa, snp.Evidence{Report: genoa.Report(testkit.ReportFields{Version: 3})}, snp.Options{Keys: failingKeys{}})
	wantReason(t, err, attest.ReasonVCEKUnavailable)
	if d := attest.Detail(err); strings.Contains(d, "Milan") {
		t.Errorf("detail %q: a version 3 Genoa report had a Milan key looked for", d)
	}
}

// A Turin VCEK's hwID (8 bytes) given as a DER OCTET STRING is read like
// the raw bytes, as a Milan or Genoa one of 64 bytes is.
func TestHWIDAsOctetString(t *testing.T) {
	t.Parallel()
	hwidOID := asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1, 4}
	for _, p := range []snp.Product{snp.Milan, snp.Turin} {
		hwid := sim.HWID(p, testkit.DefaultChipID)
		ext := sim.EndorsementExtensions(p, sim.ProductName(p), testkit.DefaultTCB, hwid, "")
		wrapped, _ := asn1.Marshal(hwid)
		for i := range ext {
			if ext[i].Id.Equal(hwidOID) {
				ext[i].Value = wrapped
			}
		}
		key, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "SEV-VCEK"},
			NotBefore: time.Unix(1_700_000_000, 0), NotAfter: time.Unix(1_900_000_000, 0), ExtraExtensions: ext}
		issuer := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "SEV-" + string(p)}}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, issuer, key.Public(), key)
		if err != nil {
			t.Fatal(err)
		}
		cert, err := x509.ParseCertificate(der)
		if err != nil {
			t.Fatal(err)
		}
		ek, err := snp.ParseEndorsementKey(cert)
		if err != nil {
			t.Errorf("%s hwID of %d bytes as an OCTET STRING: %v", p, len(hwid), err)
		} else if !bytes.Equal(ek.HWID, hwid) {
			t.Errorf("%s hwID of %d bytes as an OCTET STRING read as %x", p, len(hwid), ek.HWID)
		}
	}
}
