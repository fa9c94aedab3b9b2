package nitro

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
)

// Every byte of a real document is covered by the chain or the signature:
// flipping a bit of it is never accepted. Each flip costs a P-384
// verification (a chain verification in a certificate), so the test flips
// every byte of the COSE framing and the signature and every 29th byte of
// the payload. A flip in the signature is
// signature_invalid; in the payload outside the certificates it is
// signature_invalid or, where it breaks the framing, malformed_evidence;
// in a certificate it may also be cert_chain_invalid.
func TestBitFlipsOfRealDocuments(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		name string
		at   func() time.Time
	}{{"blocky-nitro-attestation.b64", atTime(realAt)}, {"blocky-nitro-attestation-debug.b64", atTime(realDebugAt)}} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			doc := readDoc(t, c.name)
			f, err := frame(doc)
			if err != nil {
				t.Fatal(err)
			}
			inCert := make([]bool, len(doc))
			for _, cert := range append([]bstr{f.env.Certificate}, f.env.CABundle...) {
				i := bytes.Index(doc, cert)
				if i < 0 {
					t.Fatal("certificate not found in the document")
				}
				for j := i; j < i+len(cert); j++ {
					inCert[j] = true
				}
			}
			sigStart := len(doc) - 96
			v := New(Options{Now: c.at, AllowDebug: true})
			for i := range doc {
				if i >= 16 && i < sigStart-8 && i%29 != 0 {
					continue
				}
				m := bytes.Clone(doc)
				m[i] ^= 1 << (i % 8)
				_, err := v.Verify(context.Background(), Evidence{Document: m})
				var e *attest.Error
				if !errors.As(err, &e) {
					t.Fatalf("byte %d: %v", i, err)
				}
				ok := e.Reason == attest.ReasonSignatureInvalid
				switch {
				case i >= sigStart:
				case inCert[i]:
					ok = ok || e.Reason == attest.ReasonMalformedEvidence || e.Reason == attest.ReasonCertChainInvalid
				default:
					ok = ok || e.Reason == attest.ReasonMalformedEvidence
				}
				if !ok {
					t.Fatalf("byte %d of %d: %v", i, len(doc), err)
				}
			}
		})
	}
}

// FuzzVerify: any input is refused with an *attest.Error or verifies; it
// never panics, and what verifies has the claims' invariants.
func FuzzVerify(f *testing.F) {
	for _, name := range []string{"blocky-nitro-attestation.b64", "blocky-nitro-attestation-debug.b64"} {
		f.Add(readDoc(f, name))
	}
	f.Add([]byte{0x84, 0x44, 0xa1, 0x01, 0x38, 0x22, 0xa0, 0x40, 0x40})
	v := New(Options{Now: atTime(realAt.Add(30 * time.Second)), AllowDebug: true})
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeDocument(b)
		if err != nil {
			if attest.ReasonOf(err) != attest.ReasonMalformedEvidence {
				t.Fatal(err)
			}
			return
		}
		c, err := v.Verify(context.Background(), ev)
		if err != nil {
			var e *attest.Error
			if !errors.As(err, &e) || e.Reason == attest.ReasonInternalError {
				t.Fatalf("%T %v", err, err)
			}
			return
		}
		if c.TEE != attest.TEENitro || c.Digest != "SHA384" || len(c.PCR0) != PCRSize || len(c.ReportData) > MaxUserData {
			t.Fatalf("claims %+v", c)
		}
	})
}
