package snp

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/azure/hcl"
)

// MaxInputSize bounds what DecodeReport reads: an Azure HCL blob is 2600
// bytes and its base64 form under 4 KiB.
const MaxInputSize = 16 << 10

// The Azure CVM HCL report blob (internal/tee/azure/hcl): hclMagic starts
// it, hclVarDataOff is where its runtime data begins.
var (
	hclMagic = hcl.Magic
)

const hclVarDataOff = hcl.VarDataOff

// DecodeReport turns a report file into Evidence: a raw 1184-byte report,
// the same as hex (an optional 0x prefix allowed) or base64 text, a report
// followed by other bytes (dropped, counted in Evidence.Ignored; go-sev-guest
// reads such files too), or an Azure CVM HCL report blob (raw or
// base64), recognised by its "HCLA" header. For an HCL blob the SNP report is
// taken from inside it and its runtime data becomes Evidence.RuntimeData, so
// that verification also checks REPORT_DATA = SHA-256(runtime data) ‖ 0³².
func DecodeReport(b []byte) (Evidence, error) {
	if len(b) > MaxInputSize {
		return Evidence{}, attest.Errorf(attest.ReasonMalformedEvidence, "input is %d bytes, limit %d", len(b), MaxInputSize)
	}
	if bytes.HasPrefix(b, hclMagic) {
		return decodeHCL(b)
	}
	if ev, ok := rawReport(b); ok {
		return ev, nil
	}
	text := attest.EvidenceText(b)
	if raw, err := hex.DecodeString(string(text)); err == nil {
		if ev, ok := rawReport(raw); ok {
			return ev, nil
		}
	}
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		raw, err := enc.DecodeString(string(text))
		if err != nil {
			continue
		}
		if bytes.HasPrefix(raw, hclMagic) {
			return decodeHCL(raw)
		}
		if ev, ok := rawReport(raw); ok {
			return ev, nil
		}
	}
	return Evidence{}, attest.Errorf(attest.ReasonMalformedEvidence,
		"%d bytes are neither a %d-byte SEV-SNP report (raw, hex or base64) nor an Azure HCL report", len(b), ReportSize)
}

// rawReport takes a report from b: exactly ReportSize bytes, or a longer b
// that starts like a report (a supported version and SIGNATURE_ALGO 1,
// ECDSA P-384 with SHA-384; SEV-SNP ABI 56860, ATTESTATION_REPORT), whose
// bytes after the report are dropped and counted in Evidence.Ignored. The
// bytes are not trusted: the signature decides.
func rawReport(b []byte) (Evidence, bool) {
	if len(b) == ReportSize {
		return Evidence{Report: b}, true
	}
	if len(b) < ReportSize {
		return Evidence{}, false
	}
	if v := leUint32(b[0:4]); v < MinReportVersion || v > MaxReportVersion || leUint32(b[0x34:0x38]) != 1 {
		return Evidence{}, false
	}
	return Evidence{Report: b[:ReportSize], Ignored: len(b) - ReportSize}, true
}

func decodeHCL(b []byte) (Evidence, error) {
	r, err := hcl.Parse(b)
	if err != nil {
		return Evidence{}, attest.Errorf(attest.ReasonMalformedEvidence, "%w", err)
	}
	if r.Type != hcl.TypeSNP {
		return Evidence{}, attest.Errorf(attest.ReasonMalformedEvidence, "HCL report type is %d, not SEV-SNP (2)", r.Type)
	}
	return Evidence{Report: bytes.Clone(r.Hardware), RuntimeData: bytes.Clone(r.RuntimeData)}, nil
}

// SplitPlain splits the body of the plain flow (POST /verify: a raw report,
// optionally followed by the extended report's certificate table) into
// evidence and the REPORT_DATA the report carries — unverified, only a
// candidate nonce until the report verifies.
func SplitPlain(body []byte) (attest.Evidence, attest.Nonce, error) {
	if len(body) < ReportSize {
		return attest.Evidence{}, attest.Nonce{}, attest.Errorf(attest.ReasonMalformedEvidence, "body is %d bytes, shorter than a report", len(body))
	}
	var n attest.Nonce
	copy(n[:], body[0x50:0x90]) // REPORT_DATA (SEV-SNP ABI 56860, ATTESTATION_REPORT)
	ev := attest.Evidence{Report: body[:ReportSize:ReportSize]}
	if len(body) > ReportSize {
		ev.CertTable = body[ReportSize:]
	}
	return ev, n, nil
}

// VerifyEvidence implements the use case's TEE interface: SEV-SNP evidence
// is a report and, optionally, a certificate table; a quote is
// malformed_evidence.
func (v *Verifier) VerifyEvidence(ctx context.Context, ev attest.Evidence) (attest.Verified, error) {
	if ev.Quote != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "SEV-SNP evidence has no quote")
	}
	c, err := v.Verify(ctx, Evidence{Report: ev.Report, CertTable: ev.CertTable})
	if err != nil {
		return nil, err
	}
	return c, nil
}

// SplitPlain implements the use case's PlainTEE interface (see the package
// function SplitPlain).
func (v *Verifier) SplitPlain(body []byte) (attest.Evidence, attest.Nonce, error) {
	return SplitPlain(body)
}
