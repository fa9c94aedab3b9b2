package attest

import "crypto/subtle"

// The TEE names of SPEC "Intel TDX": the "tee" of a request, of claims, of
// reference values, of a token's submodule and of the metrics' tee label.
const (
	TEESEVSNP = "sev-snp"
	TEETDX    = "tdx"
)

// Verified is the claims of one verified piece of evidence, whatever its
// TEE: *Claims (SEV-SNP) or *TDXClaims. The policy sees its JSON form; the
// use case reads only the three things every TEE has.
type Verified interface {
	// TEEName is the claims' "tee" (TEESEVSNP or TEETDX).
	TEEName() string
	// BoundData is REPORT_DATA, the 64 bytes the guest chose.
	BoundData() []byte
	// LaunchMeasurement is what --measurement compares, 48 bytes: SEV-SNP's
	// MEASUREMENT, TDX's MRTD.
	LaunchMeasurement() []byte
}

// TEEName implements Verified.
func (c *Claims) TEEName() string { return c.TEE }

// BoundData implements Verified.
func (c *Claims) BoundData() []byte { return c.ReportData }

// LaunchMeasurement implements Verified.
func (c *Claims) LaunchMeasurement() []byte { return c.Measurement }

// ExpectReportData is the one comparison of REPORT_DATA with what it must
// hold (SPEC "HTTP API v1" rule 2, or the CLI's --report-data), in constant
// time: report_data_mismatch unless v's REPORT_DATA is exactly want.
func ExpectReportData(v Verified, want []byte) error {
	if m, ok := v.(ReportDataMatcher); ok {
		if !m.MatchReportData(want) {
			return Errorf(ReasonReportDataMismatch, "the TPM quote does not bind the expected value")
		}
		return nil
	}
	if subtle.ConstantTimeCompare(v.BoundData(), want) != 1 {
		return Errorf(ReasonReportDataMismatch, "REPORT_DATA is not the expected value")
	}
	return nil
}

// ExpectMeasurement checks v's launch measurement (SEV-SNP MEASUREMENT, TDX
// MRTD) against an exact expectation, in constant time.
func ExpectMeasurement(v Verified, want []byte) error {
	if subtle.ConstantTimeCompare(v.LaunchMeasurement(), want) != 1 {
		return Errorf(ReasonMeasurementMismatch, "launch measurement is not the expected one")
	}
	return nil
}

// Expect checks v against exact expectations: a launch measurement (48
// bytes) and REPORT_DATA (64 bytes); a nil expectation is not checked.
func Expect(v Verified, measurement, reportData []byte) error {
	if measurement != nil {
		if err := ExpectMeasurement(v, measurement); err != nil {
			return err
		}
	}
	if reportData != nil {
		return ExpectReportData(v, reportData)
	}
	return nil
}

// Evidence is the evidence of one attestation as the API carries it
// (SPEC "HTTP API v1" and "Intel TDX"), decoded from base64 and not yet
// verified: SEV-SNP's report and certificate table, or TDX's quote. Each
// TEE verifier takes its own parts and refuses the others'.
type Evidence struct {
	Report    []byte // SEV-SNP ATTESTATION_REPORT
	CertTable []byte // SEV-SNP extended-report certificate table; nil if none
	Quote     []byte // TDX quote (version 4 or 5)
	Document  []byte // AWS Nitro Enclaves attestation document (COSE_Sign1)
	// Azure is the vTPM evidence of azure-snp and azure-tdx; nil for
	// other TEEs.
	Azure *AzureEvidence
}
