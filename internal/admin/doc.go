// Package admin is trustgate's admin API (SPEC "Additions (2026-12)",
// "Fleet operations"): list, approve and withdraw reference values at run
// time, on a listener of its own, and list the launch records
// (GET /admin/v1/launches: pseudonym prefixes, sequence numbers, first and
// last seen, anomaly flag; ?launch=<pseudonym> for one, as `trustgate fleet
// lookup` computes it from the launch key; never a REPORT_ID or chip id).
//
// # The admin layer
//
// What the admin API changes is a layer over the reference-values file,
// never the file itself: per label, one record, an approval (a
// measurement entry) or a withdrawal. A record wins over the file's entry
// of the same label, so
//
//   - POST approves a new label (409 if the label is approved already, by
//     the file or the layer: withdraw it first);
//   - DELETE withdraws a label wherever its value came from (404 if no
//     approved value has it), e.g. a file entry that must stop matching
//     before the next ConfigMap roll-out;
//   - min_tcb and allowed_vmpl come from the file only.
//
// The effective reference values are the file's entries without a record,
// then the layer's approvals in label order (refvalues.Set.WithOverlay);
// the appraisal-policy-id covers them. A reload of the file keeps the
// layer over the new file.
//
// # Where the layer lives
//
// With Redis (RedisStore) every replica shares one layer: a change is one
// Lua script (checks, record, version counter) and every replica polls the
// version (Layer.Follow) and applies a new one, so a change is in force
// everywhere within the poll interval plus one Redis round trip. Without
// Redis (MemoryStore) the layer is the replica's own.
//
// The version only grows. Each replica keeps the newest layer it has held
// (in memory, and in its state directory through LayerOptions.Memory); a
// store found holding an older one (a restore from a snapshot, a failover
// to a replica that lagged, lost data) is never applied: the newer layer
// is written back (Store.Restore, only if the store has not changed since
// it was read), logged and counted (kind rollback). A replica restarted
// with its state directory does the same at start. A replica that starts
// while Redis does not answer appraises nothing (store_unavailable) until
// it has read the layer.
//
// A restored store can also hold the very version a replica never saw,
// or be met by a replica that holds nothing (an empty state directory).
// So the layer in Redis is stamped with the run_id of the Redis server
// process it was last confirmed on (Confirmer): a change on a confirmed
// (or empty) layer and a write-back keep it confirmed; a replica holding
// this very layer confirms it after a restart, restore or failover; an
// operator confirms it with POST /admin/v1/reference-values/confirm
// (PathConfirm). A replica holding no such layer applies an unconfirmed
// one with every approval held out (fail closed; UnconfirmedError, kind
// unconfirmed, /readyz degraded) until it is confirmed.
//
// # Signed approvals
//
// With a trusted reference-values key, an approval is accepted only as a
// compact JWS under that key (refvalues.SignEntry) carrying iat and jti,
// and is stored as that JWS; every replica verifies it again when it
// loads the layer. A jti is accepted once, ever; an approval signed
// before the last withdrawal of its label is refused (409
// approval_replayed). The layer records the fleet's trust key requirement
// (TrustKeyFingerprint) at its first change: a replica with another one
// does not start (Layer.CheckTrust), and one that runs withdraws every
// approval of such a layer.
//
// # Authentication and audit
//
// Every call needs Authorization: Bearer with an admin token (ParseTokens:
// one bare token, or NAME:TOKEN per operator; compared in constant time)
// or a client certificate verified against the admin client CA; anything
// else is 401. Every call, accepted or refused, is one audit line
// (Auditor): who (the certificate subject, token:NAME, or "token:sha256:"
// and a digest prefix of a bare token, never the token), the action, the
// label, the outcome (accepted, refused, or unknown when the store did
// not confirm a write) and the reason, chained by audit_seq and
// audit_prev. No measurement value is logged.
package admin
