// Package testkit makes real, signed SEV-SNP evidence for tests: a
// certificate chain built by go-sev-guest's fake AMD signer (ARK → ASK/ASVK
// → VCEK/VLEK, RSA-PSS and ECDSA P-384 like AMD's), the matching pinned
// roots, and reports with chosen fields signed by the fake VCEK or VLEK.
//
// Nothing here is trusted by a production verifier: the roots it returns
// must be passed to the verifier explicitly.
package testkit
