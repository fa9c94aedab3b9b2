// Package tiered is the cache under the certificate and collateral
// services (internal/certs for AMD's KDS, internal/pcs for Intel's PCS):
// records of a type the service names, in memory (the service's own LRU of
// verified entries), on disk and in Redis (Store, Tiers), each with a
// Lifetime (fresh until its refresh point, then served stale while a
// refresh runs, up to a bound), fetched once per key however many callers
// miss at once (Flights, with bounds on fetches and waiting callers, per
// client too), through a first-come-first-served rate limit that honours
// the origin's Retry-After (Limiter), with retries and backoff (Origin),
// on a Background that Close ends. Newest picks the newest usable entry of
// memory and the tiers. The settings both services share (the origin's
// client, the disk and Redis tiers, the clock, the rate and timing) are
// one struct, Settings, that each service's Config embeds, with its
// defaults (Settings.Default) and checks (Settings.Check) here too.
//
// The services keep what is theirs: the record types and their
// verification, the URLs, body limits and headers of their origin, and
// their own rules (the KDS's per-client budget, negative cache and
// revocation; PCS's assembly of four documents into one collateral set).
package tiered
