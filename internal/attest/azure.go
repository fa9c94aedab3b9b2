package attest

import (
	"bytes"
	"crypto/subtle"
)

// The TEE names of SPEC "Azure confidential VMs": SEV-SNP and TDX attested
// through the vTPM of an Azure confidential VM.
const (
	TEEAzureSNP = "azure-snp"
	TEEAzureTDX = "azure-tdx"
)

// TPMQuote is a TPM2_Quote as an Azure guest sends it (SPEC "Azure
// confidential VMs"): the signed TPMS_ATTEST, its signature (raw RSASSA
// bytes or a TPMT_SIGNATURE) and the PCR values it covers, in selection
// order.
type TPMQuote struct {
	Message   []byte
	Signature []byte
	PCRs      [][]byte
}

// AzureEvidence is the vTPM evidence of an Azure confidential VM, decoded
// from base64 and not yet verified: the HCL report blob, the TPM quote, and
// the VCEK (PEM or DER; azure-snp, optional) or the TD quote (azure-tdx).
type AzureEvidence struct {
	HCLReport []byte
	TPMQuote  TPMQuote
	VCEK      []byte
	TDQuote   []byte
}

// ExtraDataSize is how much of the expected REPORT_DATA a TPM quote's
// extraData holds (SPEC "Azure confidential VMs": cut to 48 bytes, the most
// a vTPM takes).
const ExtraDataSize = 48

// VTPM is what the vTPM of an Azure confidential VM adds to the claims of
// its hardware report (SPEC "Azure confidential VMs"): the PCRs the quote
// signed and the VM configuration of the HCL runtime data. Built only from
// a quote whose signature verified under the attestation key the verified
// hardware report binds.
type VTPM struct {
	// TPM holds "pcr00" … "pcr23": the PCRs the quote covers, lowercase hex.
	TPM map[string]Hex `json:"tpm"`
	// Azure is the runtime data's VM configuration.
	Azure AzureVM `json:"azure"`
	// ExtraData is the quote's extraData (the verifier's nonce binding);
	// UserData the runtime data's user-data (64 bytes, zero when unused).
	// Neither is policy input.
	ExtraData []byte `json:"-"`
	UserData  []byte `json:"-"`
}

// AzureVM is the "vm-configuration" of the HCL runtime data.
type AzureVM struct {
	VMID           string `json:"vm_id"`
	SecureBoot     bool   `json:"secure_boot"`
	TPMEnabled     bool   `json:"tpm_enabled"`
	ConsoleEnabled bool   `json:"console_enabled"`
}

// MatchReportData reports whether the quote binds want, the expected
// REPORT_DATA (or the CLI's --report-data, up to 64 bytes): extraData is
// want cut to ExtraDataSize bytes, and a runtime-data user-data that is not
// all zeros begins with want. Constant time in the compared bytes.
func (t *VTPM) MatchReportData(want []byte) bool {
	cut := want[:min(len(want), ExtraDataSize)]
	ok := subtle.ConstantTimeCompare(t.ExtraData, cut) == 1
	if !allZero(t.UserData) {
		ok = ok && len(t.UserData) >= len(want) && subtle.ConstantTimeCompare(t.UserData[:len(want)], want) == 1
	}
	return ok
}

func allZero(b []byte) bool { return len(bytes.Trim(b, "\x00")) == 0 }

// AzureSNPClaims are the claims of a verified azure-snp attestation: the
// SEV-SNP claims of the HCL report (tee "azure-snp") plus the vTPM's.
type AzureSNPClaims struct {
	*Claims
	VTPM
}

// AzureTDXClaims are the claims of a verified azure-tdx attestation: the
// TDX claims of the TD quote (tee "azure-tdx") plus the vTPM's.
type AzureTDXClaims struct {
	*TDXClaims
	VTPM
}

// ReportDataMatcher is a Verified whose binding of the expected REPORT_DATA
// is not REPORT_DATA itself (Azure: the TPM quote's extraData);
// ExpectReportData asks it instead of comparing BoundData.
type ReportDataMatcher interface {
	MatchReportData(want []byte) bool
}
