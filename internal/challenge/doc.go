// Package challenge issues and consumes single-use nonces (SPEC "HTTP API
// v1", rule 1) without keeping state at issue time.
//
// A nonce is 64 bytes, the size of REPORT_DATA:
//
//	[0]      format version (2)
//	[1:7]    issue time, Unix milliseconds, 48 bits big-endian
//	[7:13]   expiry, Unix milliseconds, 48 bits big-endian
//	[13:32]  19 random bytes (152 bits); without a shared store, [13:21] is
//	         the issuing replica's id and [21:32] 88 random bits
//	         (Options.Replica: only that replica accepts the nonce)
//	[32:64]  HMAC-SHA256 under the verifier's nonce key over bytes 0..31
//
// Version 1 (expiry only, no issue time) is no longer accepted: under the
// right key it is store_unavailable (503, which the agent retries with a
// new challenge), else nonce_invalid. A version 1 nonce lived 120 s by
// default, so an upgrade costs the guests holding one a new challenge.
//
// Checking needs only the key: a nonce from another verifier (another key)
// fails its MAC, a late one its expiry. Consuming records the nonce in a
// Store until it expires, atomically, so that it is accepted at most once
// across every replica sharing the store.
//
// The issue time is what makes single use hold when a store forgets: a
// Store refuses a record issued before its records begin
// (ErrIssuedBeforeRecords, reported as store_unavailable). The memory
// store's records begin when the process starts (to the second below: a
// token's iat has 1 s resolution), so a restarted verifier
// sharing its nonce key refuses every nonce issued before the restart
// instead of accepting once more those consumed before it. The Redis
// store keeps a marker of when its records begin and of the Redis server
// process (run_id) that holds them; a write that finds the marker gone
// (data lost, FLUSHALL) or written by another server process (a restart,
// with or without persistence, or a failover) moves the beginning to
// Redis's clock plus a margin for the replicas' clock skew, and refuses
// everything issued before it. See RedisStore for the exact rule.
//
// With a key generated at start, every outstanding nonce becomes invalid
// at a restart (nonce_invalid).
package challenge
