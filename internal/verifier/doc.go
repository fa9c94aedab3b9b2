// Package verifier is trustgate's attestation use case: a nonce this
// verifier issued, evidence that verifies, REPORT_DATA bound as SPEC rule 2
// requires, a policy that allows, and only then the nonce is consumed and a
// token issued. It declares the interfaces it consumes; internal/app wires
// the implementations.
//
// A rejected attempt changes nothing: the nonce is consumed only after
// every check has passed, so a guest whose evidence was refused for a
// transient reason can retry with the same challenge until it expires.
package verifier
