// Package secretfile holds the one rule for files that keep a verifier's
// secrets (the nonce and token keys, the resource store): they are
// accessible by their owner only, no group or other permission bit, or
// they are refused.
package secretfile
