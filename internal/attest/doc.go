// Package attest holds trustgate's domain vocabulary, shared by every TEE
// verifier, the policy engine, the HTTP API and the CLI: the stable reason
// codes of a rejection (Reason), the one typed error that carries them
// (*Error), the evidence as the API carries it (Evidence), and the flat
// claims verified evidence yields: Claims for SEV-SNP, TDXClaims for Intel
// TDX, both Verified, the TEE-neutral view the use case and the CLI read
// (REPORT_DATA, launch measurement) through one comparison
// (ExpectReportData).
//
// It imports the standard library only, so that every other package can
// depend on it without pulling in a TEE library.
package attest
