package nitro

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"

	"github.com/trustgate/trustgate/internal/attest"
)

// MaxInputSize bounds what DecodeDocument reads: a document in base64
// inside JSON.
const MaxInputSize = 64 << 10

// IsDocument reports whether b looks like the start of a COSE_Sign1
// (untagged, or with tag 18) whose protected header is a short byte
// string, as the NSM writes it. It reads unverified bytes only to choose a
// decoder.
func IsDocument(b []byte) bool {
	if len(b) > 0 && b[0] == 0xd2 {
		b = b[1:]
	}
	return len(b) >= 2 && b[0] == 0x84 && b[1]>>5 == majorBstr
}

// DecodeDocument turns a document file into Evidence: raw CBOR, base64 text
// (standard or URL alphabet, padded or not, whitespace ignored), or the
// JSON of the API's evidence, {"document": base64}. Input that is none of
// these is malformed_evidence.
func DecodeDocument(b []byte) (Evidence, error) {
	if len(b) > MaxInputSize {
		return Evidence{}, attest.Errorf(attest.ReasonMalformedEvidence, "input is %d bytes, limit %d", len(b), MaxInputSize)
	}
	if IsDocument(b) {
		return Evidence{Document: b}, nil
	}
	var j struct {
		Document string `json:"document"`
	}
	if t := bytes.TrimSpace(b); len(t) > 0 && t[0] == '{' {
		if json.Unmarshal(t, &j) == nil {
			b = []byte(j.Document)
		}
	}
	if raw, ok := DecodeText(b); ok {
		return Evidence{Document: raw}, nil
	}
	return Evidence{}, attest.Errorf(attest.ReasonMalformedEvidence, "%d bytes are not a Nitro attestation document (CBOR, base64 or {\"document\": base64})", len(b))
}

// DecodeText decodes base64 text whose content starts like a document.
func DecodeText(b []byte) ([]byte, bool) {
	text := string(bytes.Join(bytes.Fields(b), nil))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(text); err == nil && IsDocument(raw) {
			return raw, true
		}
	}
	return nil, false
}

// VerifyEvidence implements the use case's TEE interface: Nitro evidence is
// a document; other TEEs' parts are malformed_evidence.
func (v *Verifier) VerifyEvidence(ctx context.Context, ev attest.Evidence) (attest.Verified, error) {
	if ev.Report != nil || ev.CertTable != nil || ev.Quote != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "Nitro evidence is an attestation document, not a report, certificate table or quote")
	}
	if ev.Document == nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "Nitro evidence has no document")
	}
	c, err := v.Verify(ctx, Evidence{Document: ev.Document})
	if err != nil {
		return nil, err
	}
	return c, nil
}
