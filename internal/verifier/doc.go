// Package verifier is trustgate's attestation use case: a nonce this
// verifier issued, evidence that verifies, REPORT_DATA bound as SPEC rule 2
// requires, a policy that allows, and only then the nonce is consumed and a
// token issued. It declares the interfaces it consumes; internal/app wires
// the implementations.
//
// It is TEE-neutral: the evidence goes to the TEE verifier registered under
// the request's "tee" (Options.TEEs: internal/tee/snp, internal/tee/tdx),
// which returns attest.Verified claims; REPORT_DATA is compared once, in
// constant time, in Service.appraise, for every TEE and both flows; the
// package reads no TEE's byte layout (the plain flow's split is the SEV-SNP
// verifier's, PlainTEE).
//
// A rejected attempt changes nothing: the nonce is consumed only after
// every check has passed, so a guest whose evidence was refused for a
// transient reason can retry with the same challenge until it expires.
//
// With Options.Launches (internal/launch), POST /v1/attest numbers the
// attestations of each launch, committed only once the attestation is
// affirmed, together with the nonce's consumption (one Redis script when
// the store is Redis), so a refused attestation never advances a sequence.
// A policy that reads input.launch (every policy but one that says it
// does not, LaunchBlind) gets the record read once the evidence verified;
// the commit is then a compare-and-set on it, and a record changed in
// between is handed back and the policy asked again, so a token's
// trustgate.launch_seq always follows the record the policy saw. A policy
// that never reads it (the default policy) gets no read: the commit takes
// the next number in the same step as the nonce, and concurrent
// attestations of one launch never conflict.
package verifier
