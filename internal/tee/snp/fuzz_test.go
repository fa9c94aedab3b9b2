package snp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"testing"

	"github.com/google/go-sev-guest/abi"

	"github.com/trustgate/trustgate/internal/attest"
)

// FuzzDecodeVerify feeds arbitrary report files and certificate tables
// through DecodeReport and Verify with a real VCEK at hand. Nothing may
// panic, every rejection must carry a built-in reason, and nothing but an
// unmodified genuine report may ever verify.
func FuzzDecodeVerify(f *testing.F) {
	vcek := readTestdata(f, "trustee-vcek.der")
	genuine := readTestdata(f, "trustee-report.bin")
	for _, name := range []string{"trustee-report.bin", "virtee-milan-report.hex", "trustee-azure-milan-hcl-report.bin",
		"openanolis-trustee-turin-report.bin", "teekit-gcp-milan-report.bin"} {
		f.Add(readTestdata(f, name), []byte(nil))
	}
	f.Add([]byte(base64.StdEncoding.EncodeToString(genuine)), []byte(nil))
	f.Add([]byte(hex.EncodeToString(genuine)), []byte(nil))
	f.Add(genuine, []byte{1, 2, 3})
	f.Add([]byte("HCLA"), bytes.Repeat([]byte{0xff}, 48))

	v := New(Options{AllowDebug: true, Now: fixedTime(f, "")})
	known := attest.Reasons()
	f.Fuzz(func(t *testing.T, input, table []byte) {
		ev, err := DecodeReport(input)
		if err == nil {
			ev.CertTable = table
			ev.EndorsementKey = vcek
			_, err = v.Verify(context.Background(), ev)
		}
		if err == nil {
			if !bytes.Equal(ev.Report, genuine) {
				t.Fatalf("a report that is not the genuine one verified: %x", ev.Report)
			}
			return
		}
		if r := attest.ReasonOf(err); !slices.Contains(known, r) || r == attest.ReasonInternalError {
			t.Fatalf("rejection without a proper reason: %v", err)
		}
	})
}

// FuzzCertTable feeds arbitrary bytes to the certificate-table parser that
// every extended report's table goes through before go-sev-guest sees it.
// Nothing may panic, and a table that parses names each GUID once, with
// every blob non-empty and inside the table.
func FuzzCertTable(f *testing.F) {
	good := (&abi.CertTable{Entries: []abi.CertTableEntry{
		{GUID: guidARK, RawCert: []byte("ark")},
		{GUID: guidASK, RawCert: []byte("ask")},
		{GUID: guidVCEK, RawCert: []byte("vcek")},
	}}).Marshal()
	f.Add(good)
	f.Add(good[:24])
	f.Add(append(bytes.Clone(good[:24]), good...))
	f.Add([]byte{})
	f.Fuzz(func(t *testing.T, b []byte) {
		table, err := parseCertTable(b)
		if err != nil {
			return
		}
		for g, blob := range table {
			if len(blob) == 0 {
				t.Fatalf("GUID %s has an empty blob", g)
			}
		}
		if len(table) > 0 && len(b) == 0 {
			t.Fatalf("entries from an empty table")
		}
	})
}
