// Package state is the verifier's memory of its own configuration (SPEC
// "Additions (2026-12-07)", "The gatekeeper's configuration never goes
// back"), after TUF's client that remembers the newest metadata it has
// seen: a configuration that goes back is refused, wherever it comes
// from.
//
// Dir is the replica's state directory (state_dir): small JSON records
// written atomically, owner-only, that survive a restart of the replica
// (in Kubernetes an emptyDir: a restart of the container, not a new pod).
//
// Versions keeps the highest version seen of each versioned document (the
// signed reference-values file), with the digest of its content, in Dir
// and, with Redis, fleet-wide in Redis (one script that only raises the
// mark). A document below the mark, or at the mark with another digest,
// is a *RollbackError.
package state
