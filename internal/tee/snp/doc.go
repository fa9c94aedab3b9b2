// Package snp verifies AMD SEV-SNP attestation reports.
//
// The pipeline follows go-sev-guest's split by spec concept and uses it for
// the report layout (abi), the certificate-table format and AMD's published
// root certificates, wrapping it where v0.15.0 falls short:
//
//   - Turin endorsement keys: the FMC SPL extension (OID
//     1.3.6.1.4.1.3704.1.3.9), the 8-byte hwID, the Turin TCB_VERSION layout
//     and the Turin KDS URL are handled here (VCEK spec 57230, Turin tables).
//   - The product line is derived from the endorsement key's issuer and the
//     pinned AMD roots, and only cross-checked against the report's CPUID
//     bytes, so Genoa parts with model A0h (Bergamo, Siena) verify.
//   - The certificate table is bounds-checked in 64-bit arithmetic before
//     go-sev-guest sees it.
//
// Order of checks (Verifier.Verify): framing; endorsement key (certificate
// table, a named file, then the KeySource); its chain up to a pinned ARK
// (cached by certificate bytes, validity re-checked at every use); the report
// signature; only then the report structure, version, reserved fields, the
// key's TCB and hardware id against the report, and the safety floor (no
// DEBUG). Nothing in the signed part of a report is interpreted as a claim
// before the signature over it has verified, so any change to those bytes is
// rejected as signature_invalid.
package snp
