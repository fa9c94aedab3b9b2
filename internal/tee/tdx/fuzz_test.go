package tdx

import (
	"bytes"
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
)

// Every bit of the signed part of a real quote (v4 and v5) is covered by the
// quote signature: flipping it is signature_invalid, except the version and
// the v5 body descriptor, which framing reads first (malformed_evidence or
// unsupported_version).
func TestBitFlipsOfTheSignedPart(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"teekit-phala-quote.dat", "trustee-quote-v5.dat"} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			q := readQuote(t, name)
			f, err := frame(q)
			if err != nil {
				t.Fatal(err)
			}
			v := New(Options{NoCollateral: true, Now: at(t, atNow)})
			framing := 2 // the version
			if f.version == 5 {
				framing = HeaderSize + v5DescriptorSize
			}
			for i := range len(f.signed) {
				for bit := range 8 {
					m := bytes.Clone(q)
					m[i] ^= 1 << bit
					_, err := v.Verify(context.Background(), Evidence{Quote: m})
					want := []attest.Reason{attest.ReasonSignatureInvalid}
					if i < 2 || (i >= HeaderSize && i < framing) {
						want = []attest.Reason{attest.ReasonMalformedEvidence, attest.ReasonUnsupportedVersion}
					}
					if r := attest.ReasonOf(err); !slices.Contains(want, r) {
						t.Fatalf("byte %#x bit %d: reason %q (%v), want one of %v", i, bit, r, err, want)
					}
				}
			}
		})
	}
}

// Changing a byte of the signature data (signatures, keys, QE report, PEM
// chain, lengths) is refused — or, where the byte is not part of anything
// checked (PEM whitespace, the end of the chain), changes nothing.
func TestFlipsOfTheSignatureData(t *testing.T) {
	t.Parallel()
	q := readQuote(t, "teekit-phala-quote.dat")
	f, err := frame(q)
	if err != nil {
		t.Fatal(err)
	}
	v := New(Options{NoCollateral: true, Now: at(t, atNow)})
	want, err := v.Verify(context.Background(), Evidence{Quote: q})
	if err != nil {
		t.Fatal(err)
	}
	allowed := []attest.Reason{attest.ReasonSignatureInvalid, attest.ReasonMalformedEvidence, attest.ReasonCertChainInvalid, attest.ReasonUnsupportedVersion}
	for i := len(f.signed); i < f.size; i++ {
		m := bytes.Clone(q)
		m[i] ^= 0x04
		got, err := v.Verify(context.Background(), Evidence{Quote: m})
		if err == nil {
			if got.MRTD.String() != want.MRTD.String() || got.FMSPC.String() != want.FMSPC.String() {
				t.Fatalf("byte %#x: accepted with other claims", i)
			}
			if i < len(f.signed)+4+sigSize+attKeySize+6+qeReportSize+sigSize {
				t.Fatalf("byte %#x (signatures, keys, QE report) changed and the quote still verifies", i)
			}
			continue
		}
		if r := attest.ReasonOf(err); !slices.Contains(allowed, r) {
			t.Fatalf("byte %#x: reason %q (%v)", i, r, err)
		}
	}
}

func TestJunk(t *testing.T) {
	t.Parallel()
	q := readQuote(t, "teekit-phala-quote.dat")
	v := New(Options{NoCollateral: true, Now: at(t, atNow)})
	for name, b := range map[string][]byte{
		"empty":          nil,
		"header only":    q[:HeaderSize],
		"no signature":   q[:0x278],
		"cut in the PEM": q[:len(q)-1000],
		"zeros":          make([]byte, 5000),
		"SNP report":     make([]byte, 1184),
		"huge":           make([]byte, MaxQuoteSize+1),
	} {
		_, err := v.Verify(context.Background(), Evidence{Quote: b})
		var e *attest.Error
		if !errors.As(err, &e) || (e.Reason != attest.ReasonMalformedEvidence && e.Reason != attest.ReasonUnsupportedVersion) {
			t.Errorf("%s: %v", name, err)
		}
	}
	if _, err := DecodeQuote([]byte("not a quote")); attest.ReasonOf(err) != attest.ReasonMalformedEvidence {
		t.Errorf("DecodeQuote of text: %v", err)
	}
}

// FuzzVerify: no input makes Verify panic, and every rejection carries a
// reason code.
func FuzzVerify(f *testing.F) {
	for _, n := range []string{"teekit-phala-quote.dat", "trustee-quote-v5.dat", "teekit-azure-quote-v4.b64"} {
		f.Add(readQuote(f, n))
	}
	v := New(Options{NoCollateral: true, Now: at(f, atNow)})
	known := attest.Reasons()
	f.Fuzz(func(t *testing.T, q []byte) {
		_, err := v.Verify(context.Background(), Evidence{Quote: q})
		if err == nil {
			return
		}
		var e *attest.Error
		if !errors.As(err, &e) || !slices.Contains(known, e.Reason) {
			t.Fatalf("rejection without a known reason: %v", err)
		}
	})
}

// FuzzDecodeQuote: decoding never panics.
func FuzzDecodeQuote(f *testing.F) {
	f.Add(readTestdata(f, "teekit-azure-quote-v4.b64"))
	f.Fuzz(func(t *testing.T, b []byte) {
		DecodeQuote(b)
	})
}

// FuzzFrame: framing never panics, and what it accepts lies inside the
// input, the signed part first.
func FuzzFrame(f *testing.F) {
	for _, n := range []string{"teekit-phala-quote.dat", "trustee-quote-v5.dat"} {
		f.Add(readQuote(f, n))
	}
	f.Fuzz(func(t *testing.T, q []byte) {
		fr, err := frame(q)
		if err != nil {
			return
		}
		if fr.size > len(q) || len(fr.signed) >= fr.size || len(fr.qeReport) != qeReportSize || len(fr.sig) != sigSize {
			t.Fatalf("framing out of bounds: size %d of %d, signed %d", fr.size, len(q), len(fr.signed))
		}
	})
}

// FuzzParseCollateral: no document makes ParseCollateral panic.
func FuzzParseCollateral(f *testing.F) {
	for _, n := range []string{"migtd-tcbinfo-b0c06f000000.json", "migtd-qeidentity.json", "migtd-pckcrl-platform.pem", "gotdxguest-rootcrl.der"} {
		f.Add(readTestdata(f, n))
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		ParseCollateral(b)
	})
}
