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
// Lua script (record + version counter) and every replica polls the
// version (Layer.Follow) and applies a new one, so a change is in force
// everywhere within the poll interval plus one Redis round trip. It
// survives verifier restarts, and Redis restarts when Redis persists
// (AOF). If Redis loses it anyway, the running replicas keep the layer in
// force, and the first to notice writes it back (only while Redis holds
// no layer at all; logged, counted in
// trustgate_config_reload_failures_total); if something was written
// first, they keep theirs and /readyz reports "degraded" until an
// operator re-applies the changes. A replica that starts while Redis does not answer appraises
// nothing (store_unavailable) until it has read the layer: it must not
// approve what an operator withdrew. Without Redis (MemoryStore) the layer
// is the replica's own and is lost when it stops; the server warns at
// start.
//
// With a trusted reference-values key, an approval is accepted only as a
// compact JWS under that key (refvalues.SignEntry) and is stored as that
// JWS; every replica verifies it again when it loads the layer, so an
// approval written into Redis by anything else than the admin API does not
// come into force (its label counts as withdrawn, and /readyz reports it).
//
// # Authentication and audit
//
// Every call needs Authorization: Bearer with the admin token (compared in
// constant time) or a client certificate verified against the admin client
// CA; anything else is 401. Each change is one log line with "audit":
// "admin", who (the certificate subject, or "token:sha256:" and the first
// 8 bytes of the SHA-256 of the token, never the token), the action
// (approve, withdraw), the label, the layer version and the new
// appraisal-policy-id. No measurement value is logged.
package admin
