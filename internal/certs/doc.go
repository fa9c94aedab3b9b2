// Package certs is trustgate's AMD certificate service: it obtains VCEKs
// and AMD's CRLs from the AMD Key Distribution Service (KDS, VCEK spec 57230
// ch. 4) so that verification does not depend on the KDS being up, without
// trusting a stale or revoked key longer than the operator allows.
//
// Service implements snp.KeySource and snp.RevocationChecker:
//
//   - Tiers: a bounded memory LRU, a disk directory (atomic writes; survives
//     restarts) and optionally Redis (shared by replicas). A VCEK is filed
//     under product, hwid and the full REPORTED_TCB (FMC included on Turin).
//     Everything read from a tier or the KDS is verified against the pinned
//     roots before it is used.
//   - The KDS client: per-request timeouts, bounded retries with jittered
//     exponential backoff, Retry-After honoured on 429 and 503, a client-side
//     rate limit (default one request per 10 s per bucket), one request in
//     flight per chip and TCB however many verifications miss at once, and
//     a short negative cache for 404.
//   - Freshness: a cached certificate or CRL is refreshed (in the background)
//     once RefreshFraction of the validity it had left when fetched has
//     passed; while the KDS fails, the cached VCEK is served for at most
//     MaxStaleness past that point (counted stale, logged), then
//     vcek_unavailable.
//   - Revocation: CRLs signed by the pinned ARK, parsed once, serials in a
//     map; a revoked intermediate or endorsement key fails with cert_revoked
//     and is purged from every tier; a CRL is used until nextUpdate plus
//     CRLGrace, then Check fails closed with vcek_unavailable.
//   - Offline use: Export writes a Bundle (one JSON file of VCEKs, CRLs and
//     chains) and Import verifies one and stores it, for Offline services.
//
// Nothing here logs or puts into an error a chip id: KDS URLs and cache
// paths, which hold one, are kept out of both.
package certs
