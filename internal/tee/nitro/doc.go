// Package nitro verifies AWS Nitro Enclaves attestation documents, with the
// shape of package snp.
//
// A document is a COSE_Sign1 (RFC 9052), ES384, whose payload is a CBOR map
// (AWS Nitro Enclaves, "Attestation document specification"): module_id,
// timestamp, digest, pcrs, certificate, cabundle, and the optional
// public_key, user_data and nonce. COSE is decoded and verified with
// github.com/veraison/go-cose, CBOR with github.com/fxamacker/cbor/v2.
//
// Order of checks (Verifier.Verify): framing (size, the COSE_Sign1
// structure, the protected header's algorithm ES384, the payload a map of
// exactly the document's keys with certificate and cabundle as bounded byte
// strings, the other fields kept unread); the chain: cabundle[0] is the
// pinned root (AWS Nitro Enclaves Root-G1, whose SHA-256 fingerprint is
// checked before it is trusted), the certificate chains through the rest of
// cabundle to it, every certificate valid at the time of judgement, the
// leaf key ECDSA P-384 (cached by the chain's bytes, validity re-checked at
// every use); the COSE signature by the leaf key. Only then are the other
// fields read, strictly typed and bounded: module_id, timestamp, digest
// (SHA384), pcrs (index 0..31, 48 bytes each, PCR0–2 present), public_key,
// user_data and nonce (null or up to 1024 bytes). Last the safety floor: a
// debug-mode enclave (PCR0, PCR1 and PCR2 all zero) is debug_enabled unless
// allowed. Nothing but the certificates, which the chain authenticates, is
// interpreted before the signature over it has verified, so any change to
// the payload is signature_invalid, or malformed_evidence where it breaks
// the framing, or cert_chain_invalid where it breaks a certificate.
//
// The nonce is the REPORT_DATA of trustgate's protocol; the caller compares
// it with the expected value in constant time (attest.ExpectReportData).
package nitro
