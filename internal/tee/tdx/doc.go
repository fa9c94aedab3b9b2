// Package tdx verifies Intel TDX quotes, versions 4 and 5 (TDX 1.0 and 1.5
// bodies), with the shape of package snp.
//
// The quote layout, the PCK certificate's SGX extensions, Intel's PCS
// collateral (TCB info v3, QE identity v2, CRLs) and the TCB level matching
// are implemented here rather than taken from go-tdx-guest v0.3.1, the only
// version on the module proxy, which rejects version 5 quotes, compares
// FMSPCs case-sensitively (refusing every 2025 TCB info, whose FMSPC PCS
// writes in upper case), checks nextUpdate but not issue dates, prints to
// stdout while verifying, and (at HEAD) compares all 16 TDX TCB components
// when TEE_TCB_SVN[1] > 0, where Intel's QVL skips the two the TDX module
// identity judges.
//
// Order of checks (Verifier.Verify): framing (version, body descriptor and
// every length inside the input; bytes after the quote ignored); the PCK
// chain in the quote up to the pinned Intel SGX Root CA (cached by the
// chain's bytes, validity re-checked at every use); the QE report's
// signature by the PCK key; the QE report data = SHA-256(attestation key ‖
// QE authentication data); the quote's signature by the attestation key
// over header and body. Only then are header (TEE type, key type) and body
// read. With collateral: the root's and the PCK CA's CRLs (current at the
// time of judgement; the PCK, its CA and the TCB signing certificate not
// listed), the TCB info for the PCK's FMSPC and the QE identity (signed
// over their exact JSON bytes by a TCB signing certificate the root signed,
// valid, issued before and not expired at the time of judgement), the QE's
// identity, and Intel's TCB level matching (platform, TDX module, TDX 1.5
// relaunch advice, QE; see matchTCB, which follows Intel's QVL) giving
// tcb_status and advisory_ids. Last the safety floor: a
// debuggable TD (TD_ATTRIBUTES.TUD, DEBUG its bit 0) is refused unless
// allowed. Nothing in the signed part of a quote is interpreted as a claim
// before the signature over it has verified, so any change to those bytes
// is rejected as signature_invalid (or, for the version and body
// descriptor that framing reads, malformed_evidence or
// unsupported_version).
//
// A TCB status is a claim, not a verdict: a quote whose platform is
// OutOfDate verifies and the policy decides (the default policy accepts the
// statuses of tdx_tcb_status, default UpToDate). No matching TCB level is
// tcb_out_of_date and Revoked is tcb_revoked, whatever the policy.
package tdx
