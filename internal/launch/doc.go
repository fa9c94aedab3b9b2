// Package launch follows guest launches across attestations and replicas
// without keeping any guest's identity (SPEC "Fleet operations",
// Launches).
//
// A launch is what one launch of a guest is known by in its evidence:
//   - SEV-SNP: REPORT_ID (SEV-SNP ABI 56860, ATTESTATION_REPORT), 32
//     random bytes the firmware chooses at SNP_LAUNCH_START and keeps for
//     the guest's life: exactly one launch.
//   - TDX: there is no REPORT_ID. The identity is the TD's RTMR-free
//     identity, MRTD ‖ MRCONFIGID ‖ MROWNER ‖ MROWNERCONFIG (48 bytes
//     each, in that order): fixed at TD build time, unchanged by what the
//     TD extends into RTMRs at run time. Two launches of the same image
//     with the same configuration are the SAME launch here; they are told
//     apart only when the host gives each launch its own MRCONFIGID or
//     MROWNERCONFIG (for instance an instance id), which is the way to get
//     per-launch sequences for TDX.
//
// The chip is SEV-SNP's CHIP_ID (none when the host masks it: MASK_CHIP_ID
// gives zeros) or, for TDX, the PCK certificate's PPID (none when the
// certificate has none).
//
// The verifier keeps, per launch, only HMAC-SHA256 pseudonyms of both under
// a key of its own (Keyer), the TEE, a sequence number, and first and last
// seen, for a retention counted from the last attestation. Whoever holds
// the key (`trustgate fleet lookup`) can compute a guest's pseudonym from
// its REPORT_ID; nobody else can link a record to a guest.
//
// Ordering, as the verifier uses it: for a policy that reads
// input.launch, Lookup after the evidence verified and before the policy
// (the policy sees the View as input.launch), and CommitConsuming only once
// the attestation is affirmed: a compare-and-set on the sequence Lookup
// saw, done with the nonce's consumption (one Redis script, see
// RedisStore). A concurrent attestation of the same launch makes it fail
// with ErrConflict, handing back the record as it is now, and the verifier
// asks the policy again, so that the policy always decided on the record
// the sequence number it issues follows. For a policy that never reads
// input.launch, Begin instead of Lookup: nothing is read, and the commit
// takes the next number whatever it is (never a conflict). Commit and
// Refresh are the compare-and-set and the read on their own.
package launch
