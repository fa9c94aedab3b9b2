// Package azure verifies Azure confidential VMs (SEV-SNP and TDX) attested
// through their vTPM (SPEC "Azure confidential VMs").
//
// An Azure CVM's hardware report is made at boot by Azure's paravisor (the
// HCL) with REPORT_DATA = SHA-256 of the HCL runtime data, so no verifier
// nonce can be in it. The runtime data holds the vTPM's attestation key
// (HCLAkPub); a TPM2_Quote by that key carries the nonce in extraData and
// the PCRs that measured the boot chain.
//
// Order of checks (Verifier.Verify), each link only after the one before it
// verified: framing of the evidence and the HCL blob; the hardware report —
// the SEV-SNP report through internal/tee/snp (chain, signature, safety
// floor) or the TD quote through internal/tee/tdx; its REPORT_DATA[0:32] is
// SHA-256 of the runtime data and [32:64] zero; only then the runtime data
// is read (HCLAkPub, user-data, vm-configuration); the quote's
// RSASSA-PKCS1-v1_5 SHA-256 signature under HCLAkPub; only then the quote
// (TPMS_ATTEST, TPM 2.0 Library Part 2 §10.12.12, parsed with go-tpm) is
// read: a quote, canonical encoding, one SHA-256 PCR bank whose selected
// PCRs, hashed in selection order, give the signed pcrDigest. The nonce
// binding (extraData and user-data against the expected REPORT_DATA) is the
// use case's one comparison (attest.ExpectReportData).
package azure
