// Package refvalues holds the reference values the verifier appraises
// SEV-SNP evidence against (SPEC "Policy and reference values"): the
// approved launch measurements, an optional TCB floor and the allowed
// VMPLs. It loads and validates a reference-values file (JSON or YAML, by
// extension) and appends a measurement to one without disturbing the rest
// of it, which is what CI does after computing a build's measurement.
//
// Signatures (sign.go): a file is signed by FILE.sig, a detached compact
// JWS (ES256, RFC 7515 Appendix F, typ FileSigType) over its exact bytes;
// one entry for the admin API is a compact JWS of its JSON (typ
// EntrySigType). The two typ values keep one from passing as the other.
//
// The admin layer (overlay.go): per label an approval or a withdrawal,
// which wins over the file's entry of that label (Set.WithOverlay).
package refvalues
