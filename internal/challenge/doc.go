// Package challenge issues and consumes single-use nonces (SPEC "HTTP API
// v1", rule 1) without keeping state at issue time.
//
// A nonce is 64 bytes, the size of REPORT_DATA:
//
//	[0]      format version (1)
//	[1:9]    expiry, Unix milliseconds, big-endian
//	[9:32]   23 random bytes
//	[32:64]  HMAC-SHA256 under the verifier's nonce key over bytes 0..31
//
// Checking needs only the key: a nonce from another verifier (another key)
// fails its MAC, a late one its expiry. Consuming records the nonce in a
// Store until it expires, atomically, so that it is accepted at most once
// across every replica sharing the store.
//
// What a restart does: with a configured key, nonces issued before the
// restart stay valid (until they expire) and, with a shared store such as
// Redis, stay single-use; with the in-memory store the record of consumed
// nonces is lost, so a nonce consumed in the last TTL (120 s by default)
// before the restart could be accepted once more. With a key generated at
// start, every outstanding nonce becomes invalid (nonce_invalid).
package challenge
