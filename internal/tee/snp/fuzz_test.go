package snp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"slices"
	"testing"

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
