// Package refvalues holds the reference values the verifier appraises
// SEV-SNP evidence against (SPEC "Policy and reference values"): the
// approved launch measurements, an optional TCB floor and the allowed
// VMPLs. It loads and validates a reference-values file (JSON or YAML, by
// extension) and appends a measurement to one without disturbing the rest
// of it, which is what CI does after computing a build's measurement.
package refvalues
