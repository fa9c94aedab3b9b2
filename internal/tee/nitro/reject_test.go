package nitro_test

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/tee/nitro"
	"github.com/trustgate/trustgate/internal/testkit"
)

func mustPKI(t testing.TB, o testkit.NitroPKIOptions) *testkit.NitroPKI {
	t.Helper()
	p, err := testkit.NewNitroPKI(o)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

func reasonIs(t testing.TB, err error, want attest.Reason) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected rejection: %v", err)
		}
		return
	}
	var e *attest.Error
	if !errors.As(err, &e) {
		t.Fatalf("error %v is not an *attest.Error; want reason %s", err, want)
	}
	if e.Reason != want {
		t.Fatalf("reason %s (%v), want %s", e.Reason, err, want)
	}
}

var nonce = bytes.Repeat([]byte{0x42}, 64)

// TestNitroRejections: documents signed by a test PKI, each with one
// thing wrong, and the exact reason each is refused with.
func TestNitroRejections(t *testing.T) {
	t.Parallel()
	pki := mustPKI(t, testkit.NitroPKIOptions{})
	other := mustPKI(t, testkit.NitroPKIOptions{})
	p256Leaf := mustPKI(t, testkit.NitroPKIOptions{LeafCurve: elliptic.P256()})
	expired := mustPKI(t, testkit.NitroPKIOptions{LeafExpires: time.Now().Add(-time.Minute)})
	zero := make([]byte, 48)
	sign := func(p *testkit.NitroPKI, payload map[string]any) []byte {
		doc, err := p.Sign(payload)
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	coseWith := func(key *ecdsa.PrivateKey, alg cose.Algorithm, payload any) []byte {
		b, err := cbor.Marshal(payload)
		if err != nil {
			t.Fatal(err)
		}
		doc, err := sim.SignCOSE(key, alg, b)
		if err != nil {
			t.Fatal(err)
		}
		return doc
	}
	p256, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	cases := []struct {
		name  string
		pki   *testkit.NitroPKI             // signs the document; nil means pki
		edit  func(m map[string]any)        // changes the payload before signing
		doc   func(m map[string]any) []byte // makes the document instead of pki.Sign
		opts  nitro.Options                 // Roots default to pki's
		want  attest.Reason
		nonce []byte // expected REPORT_DATA; nil means nonce
	}{
		{name: "valid", want: ""},
		{name: "tagged COSE_Sign1 (tag 18)", doc: func(m map[string]any) []byte { return append([]byte{0xd2}, sign(pki, m)...) }},
		{name: "another PKI's document", pki: other, want: attest.ReasonCertChainInvalid},
		{name: "another root pinned, AWS's by default", opts: nitro.Options{Roots: nitro.AWSRoots()}, want: attest.ReasonCertChainInvalid},
		{name: "cabundle does not start with the root", edit: func(m map[string]any) {
			b := m["cabundle"].([][]byte)
			m["cabundle"] = [][]byte{b[1], b[0]}
		}, want: attest.ReasonCertChainInvalid},
		{name: "cabundle lacks the CA", edit: func(m map[string]any) { m["cabundle"] = m["cabundle"].([][]byte)[:1] }, want: attest.ReasonCertChainInvalid},
		{name: "certificate is the CA's", edit: func(m map[string]any) { m["certificate"] = pki.CA.Raw }, want: attest.ReasonSignatureInvalid},
		{name: "certificate is not DER", edit: func(m map[string]any) { m["certificate"] = []byte{0x30, 0x03, 1, 2, 3} }, want: attest.ReasonCertChainInvalid},
		{name: "leaf key on P-256", pki: p256Leaf, doc: func(m map[string]any) []byte { return coseWith(pki.LeafKey, cose.AlgorithmES384, m) },
			opts: nitro.Options{Roots: p256Leaf.Roots}, want: attest.ReasonCertChainInvalid},
		{name: "leaf expired", pki: expired, opts: nitro.Options{Roots: expired.Roots}, want: attest.ReasonCertChainInvalid},
		{name: "judged before the chain is valid", opts: nitro.Options{Now: func() time.Time { return time.Now().Add(-2 * time.Hour) }}, want: attest.ReasonCertChainInvalid},
		{name: "judged after the chain expired", opts: nitro.Options{Now: func() time.Time { return time.Now().Add(400 * 24 * time.Hour) }}, want: attest.ReasonCertChainInvalid},
		{name: "signed by another key", doc: func(m map[string]any) []byte { return coseWith(other.LeafKey, cose.AlgorithmES384, m) }, want: attest.ReasonSignatureInvalid},
		{name: "ES256 in the protected header", doc: func(m map[string]any) []byte { return coseWith(p256, cose.AlgorithmES256, m) }, want: attest.ReasonMalformedEvidence},
		{name: "payload is not a map", doc: func(map[string]any) []byte { return coseWith(pki.LeafKey, cose.AlgorithmES384, []int{1, 2}) }, want: attest.ReasonMalformedEvidence},
		{name: "unknown field", edit: func(m map[string]any) { m["module_idx"] = "x" }, want: attest.ReasonMalformedEvidence},
		{name: "duplicate key", doc: func(m map[string]any) []byte {
			b, _ := cbor.Marshal(m)
			if b[0] != 0xa9 { // a map of nine pairs
				t.Fatalf("payload starts %#x", b[0])
			}
			b[0] = 0xaa
			dup, _ := cbor.Marshal("module_id")
			v, _ := cbor.Marshal("i-other")
			doc, err := sim.SignCOSE(pki.LeafKey, cose.AlgorithmES384, append(append(b, dup...), v...))
			if err != nil {
				t.Fatal(err)
			}
			return doc
		}, want: attest.ReasonMalformedEvidence},
		{name: "certificate is text", edit: func(m map[string]any) { m["certificate"] = string(pki.Leaf.Raw) }, want: attest.ReasonMalformedEvidence},
		{name: "certificate over 1024 bytes", edit: func(m map[string]any) { m["certificate"] = make([]byte, 1025) }, want: attest.ReasonMalformedEvidence},
		{name: "cabundle empty", edit: func(m map[string]any) { m["cabundle"] = [][]byte{} }, want: attest.ReasonMalformedEvidence},
		{name: "cabundle of nine", edit: func(m map[string]any) {
			b := m["cabundle"].([][]byte)
			for len(b) < 9 {
				b = append(b, pki.CA.Raw)
			}
			m["cabundle"] = b
		}, want: attest.ReasonMalformedEvidence},
		{name: "missing module_id", edit: func(m map[string]any) { delete(m, "module_id") }, want: attest.ReasonMalformedEvidence},
		{name: "module_id is bytes", edit: func(m map[string]any) { m["module_id"] = []byte("i-0") }, want: attest.ReasonMalformedEvidence},
		{name: "module_id too long", edit: func(m map[string]any) { m["module_id"] = strings.Repeat("i", 257) }, want: attest.ReasonMalformedEvidence},
		{name: "timestamp zero", edit: func(m map[string]any) { m["timestamp"] = 0 }, want: attest.ReasonMalformedEvidence},
		{name: "timestamp negative", edit: func(m map[string]any) { m["timestamp"] = -1 }, want: attest.ReasonMalformedEvidence},
		{name: "timestamp text", edit: func(m map[string]any) { m["timestamp"] = "1725719859545" }, want: attest.ReasonMalformedEvidence},
		{name: "digest SHA256", edit: func(m map[string]any) { m["digest"] = "SHA256" }, want: attest.ReasonMalformedEvidence},
		{name: "pcrs empty", edit: func(m map[string]any) { m["pcrs"] = map[uint64][]byte{} }, want: attest.ReasonMalformedEvidence},
		{name: "PCR index 32", edit: func(m map[string]any) { m["pcrs"].(map[uint64][]byte)[32] = zero }, want: attest.ReasonMalformedEvidence},
		{name: "PCR of 32 bytes", edit: func(m map[string]any) { m["pcrs"].(map[uint64][]byte)[4] = zero[:32] }, want: attest.ReasonMalformedEvidence},
		{name: "PCR index text", edit: func(m map[string]any) { m["pcrs"] = map[string][]byte{"0": zero} }, want: attest.ReasonMalformedEvidence},
		{name: "PCR value text", edit: func(m map[string]any) { m["pcrs"] = map[uint64]string{0: string(zero)} }, want: attest.ReasonMalformedEvidence},
		{name: "no PCR1", edit: func(m map[string]any) { delete(m["pcrs"].(map[uint64][]byte), 1) }, want: attest.ReasonMalformedEvidence},
		{name: "nonce over 1024 bytes", edit: func(m map[string]any) { m["nonce"] = make([]byte, 1025) }, want: attest.ReasonMalformedEvidence},
		{name: "user_data is text", edit: func(m map[string]any) { m["user_data"] = "hello" }, want: attest.ReasonMalformedEvidence},
		{name: "public_key is an integer", edit: func(m map[string]any) { m["public_key"] = 7 }, want: attest.ReasonMalformedEvidence},
		{name: "debug mode", edit: func(m map[string]any) {
			for i := range uint64(3) {
				m["pcrs"].(map[uint64][]byte)[i] = zero
			}
		}, want: attest.ReasonDebugEnabled},
		{name: "debug mode allowed", edit: func(m map[string]any) {
			for i := range uint64(3) {
				m["pcrs"].(map[uint64][]byte)[i] = zero
			}
		}, opts: nitro.Options{AllowDebug: true}},
		{name: "PCR0 zero alone is not debug mode", edit: func(m map[string]any) { m["pcrs"].(map[uint64][]byte)[0] = zero }},
		{name: "another nonce", nonce: bytes.Repeat([]byte{0x43}, 64), want: attest.ReasonReportDataMismatch},
		{name: "nonce absent", edit: func(m map[string]any) { m["nonce"] = nil }, want: attest.ReasonReportDataMismatch},
		{name: "nonce longer than REPORT_DATA", edit: func(m map[string]any) { m["nonce"] = append(bytes.Clone(nonce), 0) }, want: attest.ReasonReportDataMismatch},
		{name: "truncated", doc: func(m map[string]any) []byte { d := sign(pki, m); return d[:len(d)-1] }, want: attest.ReasonMalformedEvidence},
		{name: "trailing byte", doc: func(m map[string]any) []byte { return append(sign(pki, m), 0) }, want: attest.ReasonMalformedEvidence},
		{name: "empty", doc: func(map[string]any) []byte { return []byte{} }, want: attest.ReasonMalformedEvidence},
		{name: "over the size limit", doc: func(map[string]any) []byte { return make([]byte, nitro.MaxDocumentSize+1) }, want: attest.ReasonMalformedEvidence},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			p := c.pki
			if p == nil {
				p = pki
			}
			m := p.Payload(testkit.NitroDocument{Nonce: nonce, UserData: []byte("user"), PublicKey: []byte("key")})
			if c.edit != nil {
				c.edit(m)
			}
			var doc []byte
			if c.doc != nil {
				doc = c.doc(m)
			} else {
				doc = sign(p, m)
			}
			o := c.opts
			if o.Roots == nil {
				o.Roots = pki.Roots
			}
			v := nitro.New(o)
			got, err := v.VerifyEvidence(context.Background(), attest.Evidence{Document: doc})
			if err == nil {
				want := nonce
				if c.nonce != nil {
					want = c.nonce
				}
				err = attest.ExpectReportData(got, want)
			}
			reasonIs(t, err, c.want)
		})
	}
}

func TestNitroEvidenceOfOtherTEEs(t *testing.T) {
	t.Parallel()
	v := nitro.New(nitro.Options{})
	for _, ev := range []attest.Evidence{{}, {Quote: []byte{4}}, {Report: []byte{1}}, {Document: []byte{0x84}, CertTable: []byte{1}}} {
		_, err := v.VerifyEvidence(context.Background(), ev)
		reasonIs(t, err, attest.ReasonMalformedEvidence)
	}
}

func TestDecodeDocumentForms(t *testing.T) {
	t.Parallel()
	pki := mustPKI(t, testkit.NitroPKIOptions{})
	doc, err := pki.Document(testkit.NitroDocument{Nonce: nonce})
	if err != nil {
		t.Fatal(err)
	}
	b64 := []byte(base64.StdEncoding.EncodeToString(doc))
	for name, in := range map[string][]byte{
		"raw":            doc,
		"base64":         b64,
		"base64 wrapped": append(append(append([]byte{}, b64[:40]...), '\n'), b64[40:]...),
		"json":           []byte(`{"document": "` + string(b64) + `"}`),
	} {
		ev, err := nitro.DecodeDocument(in)
		if err != nil || !bytes.Equal(ev.Document, doc) {
			t.Errorf("%s: %v", name, err)
		}
	}
	for name, in := range map[string][]byte{
		"text":         []byte("hello"),
		"json other":   []byte(`{"quote": "AAAA"}`),
		"json not b64": []byte(`{"document": "%%%"}`),
		"too big":      make([]byte, nitro.MaxInputSize+1),
	} {
		_, err := nitro.DecodeDocument(in)
		if attest.ReasonOf(err) != attest.ReasonMalformedEvidence {
			t.Errorf("%s: %v", name, err)
		}
	}
}
