package snp

import (
	"encoding/asn1"
	"encoding/binary"
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
)

// Checks with a range or a length, at their edges: the last value inside
// is taken and the first outside refused, so that a bound moved by one
// fails a test (scripts/probe, narrowing mutants).
func TestRangeAndLengthEdges(t *testing.T) {
	t.Parallel()
	t.Run("certificate table size", func(t *testing.T) {
		b := make([]byte, MaxCertTableSize)
		copy(b[0:16], guidVCEK[:])
		binary.LittleEndian.PutUint32(b[16:20], 48)
		binary.LittleEndian.PutUint32(b[20:24], 64)
		if _, err := parseCertTable(b); err != nil {
			t.Fatalf("a table of exactly MaxCertTableSize bytes: %v", err)
		}
		if _, err := parseCertTable(append(b, 0)); err == nil {
			t.Fatal("a table one byte over MaxCertTableSize: accepted")
		}
	})
	t.Run("product from CPUID", func(t *testing.T) {
		for _, c := range []struct {
			family, model byte
			want          Product
		}{
			{0x19, 0x00, Milan}, {0x19, 0x0F, Milan},
			{0x19, 0x10, Genoa}, {0x19, 0x1F, Genoa}, {0x19, 0x20, ""},
			{0x19, 0x9F, ""}, {0x19, 0xA0, Genoa}, {0x19, 0xAF, Genoa}, {0x19, 0xB0, ""},
			{0x1A, 0x00, Turin}, {0x1A, 0x11, Turin}, {0x1A, 0x12, ""},
			{0x18, 0x01, ""}, {0x1B, 0x01, ""},
		} {
			p, ok := productFromCPUID(c.family, c.model)
			if p != c.want || ok != (c.want != "") {
				t.Errorf("family %#x model %#x: %q %v, want %q", c.family, c.model, p, ok, c.want)
			}
		}
	})
	t.Run("SPL integers", func(t *testing.T) {
		for v, ok := range map[int64]bool{0: true, 255: true, 256: false, -1: false} {
			der, _ := asn1.Marshal(v)
			if _, err := asn1Uint8(der); (err == nil) != ok {
				t.Errorf("INTEGER %d: %v, want accepted %v", v, err, ok)
			}
		}
	})
	t.Run("report file size and version", func(t *testing.T) {
		start := func(n int, version uint32) []byte {
			b := make([]byte, n)
			binary.LittleEndian.PutUint32(b[0:4], version)
			binary.LittleEndian.PutUint32(b[0x34:0x38], 1) // SIGNATURE_ALGO ECDSA P-384
			return b
		}
		ev, err := DecodeReport(start(MaxInputSize, 3))
		if err != nil || ev.Ignored != MaxInputSize-ReportSize {
			t.Fatalf("a report padded to MaxInputSize: %v, %d ignored", err, ev.Ignored)
		}
		if _, err := DecodeReport(start(MaxInputSize+1, 3)); attest.ReasonOf(err) != attest.ReasonMalformedEvidence {
			t.Fatalf("one byte over MaxInputSize: %v, want malformed_evidence", err)
		}
		// A report followed by other bytes is taken only for a supported
		// version (its first bytes are all there is to tell).
		for v := uint32(MinReportVersion - 1); v <= MaxReportVersion+1; v++ {
			_, err := DecodeReport(start(ReportSize+20, v))
			if ok := v >= MinReportVersion && v <= MaxReportVersion; (err == nil) != ok {
				t.Errorf("version %d with 20 bytes after: %v, want taken %v", v, err, ok)
			}
		}
	})
}
