package attest

// Launch is the policy's view of the launch a verified piece of evidence
// belongs to (SPEC "Fleet operations", Launches), input.launch: what the
// verifier recorded before this attestation, never a raw identity.
type Launch struct {
	// Seq is the sequence number this attestation gets if it is affirmed
	// (1 for the first attestation of the launch). Under concurrent
	// attestations of one launch the verifier asks the policy again with
	// the new Seq before it issues the token.
	Seq uint64 `json:"seq"`
	// FirstSeen is when the launch was first attested (RFC 3339, UTC), ""
	// when this is its first attestation.
	FirstSeen string `json:"first_seen"`
	// NewChip is true when the launch was first attested from another chip
	// (SEV-SNP CHIP_ID, TDX PPID) than this evidence's: a cloned or relayed
	// guest. False when either chip is unknown.
	NewChip bool `json:"new_chip"`
}
