package tdx

import (
	"context"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"

	"github.com/trustgate/trustgate/internal/attest"
)

// MaxInputSize bounds what DecodeQuote reads: a quote in base64 within an
// 8000-byte buffer is under 11 KiB.
const MaxInputSize = 64 << 10

// IsQuote reports whether b looks like the start of a TDX quote: version 4
// or 5, attestation key type 2 (ECDSA P-256) and TEE type 0x81. It reads
// unverified bytes only to choose a decoder.
func IsQuote(b []byte) bool {
	if len(b) < HeaderSize {
		return false
	}
	v := binary.LittleEndian.Uint16(b[0:2])
	return (v == 4 || v == 5) && binary.LittleEndian.Uint16(b[2:4]) == attKeyTypeECDSAP256 &&
		binary.LittleEndian.Uint32(b[4:8]) == teeTypeTDX
}

// DecodeQuote turns a quote file into Evidence: a raw quote, or the same as
// hex or base64 text (standard or URL alphabet, padded or not, whitespace
// ignored, hex with an optional 0x prefix). Bytes after the quote are kept
// in Evidence and ignored by Verify. A raw TDX quote header of another
// version is unsupported_version; other input is malformed_evidence.
func DecodeQuote(b []byte) (Evidence, error) {
	if len(b) > MaxInputSize {
		return Evidence{}, attest.Errorf(attest.ReasonMalformedEvidence, "input is %d bytes, limit %d", len(b), MaxInputSize)
	}
	if IsQuote(b) {
		return Evidence{Quote: b}, nil
	}
	if raw, ok := DecodeText(b); ok {
		return Evidence{Quote: raw}, nil
	}
	if len(b) >= HeaderSize && binary.LittleEndian.Uint32(b[4:8]) == teeTypeTDX {
		return Evidence{}, attest.Errorf(attest.ReasonUnsupportedVersion, "TDX quote version %d, supported 4 and 5", binary.LittleEndian.Uint16(b[0:2]))
	}
	return Evidence{}, attest.Errorf(attest.ReasonMalformedEvidence, "%d bytes are not a TDX quote (raw, hex or base64)", len(b))
}

// DecodeText decodes hex (an optional 0x prefix allowed) or base64 text
// whose content starts like a TDX quote.
func DecodeText(b []byte) ([]byte, bool) {
	text := attest.EvidenceText(b)
	if raw, err := hex.DecodeString(string(text)); err == nil && IsQuote(raw) {
		return raw, true
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(string(text)); err == nil && IsQuote(raw) {
			return raw, true
		}
	}
	return nil, false
}

// VerifyEvidence implements the use case's TEE interface: TDX evidence is a
// quote; SEV-SNP parts are malformed_evidence.
func (v *Verifier) VerifyEvidence(ctx context.Context, ev attest.Evidence) (attest.Verified, error) {
	if ev.Report != nil || ev.CertTable != nil || ev.Document != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "TDX evidence is a quote, not a report, certificate table or document")
	}
	if ev.Quote == nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "TDX evidence has no quote")
	}
	c, err := v.Verify(ctx, Evidence{Quote: ev.Quote})
	if err != nil {
		return nil, err
	}
	return c, nil
}
