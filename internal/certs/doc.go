// Package certs is trustgate's AMD certificate service: it obtains VCEKs
// and AMD's CRLs from the AMD Key Distribution Service (KDS, VCEK spec 57230
// ch. 4) so that verification does not depend on the KDS being up, without
// trusting a stale or revoked key longer than the operator allows.
//
// Service implements snp.CertKeySource (a KeySource whose VCEKs are parsed
// once, when fetched or read from a tier, and handed to the Verifier parsed)
// and snp.RevocationChecker:
//
//   - Tiers: a bounded memory LRU, a disk directory (atomic writes; survives
//     restarts) and optionally Redis (shared by replicas). A VCEK is filed
//     under product, hwid and the full REPORTED_TCB (FMC included on Turin).
//     Everything read from a tier or the KDS is verified against the pinned
//     roots before it is used.
//   - The KDS client: per-request timeouts, bounded retries with jittered
//     exponential backoff, Retry-After honoured on 429 and 503 (held to at
//     most MaxHoldBack, an hour by default, and logged when capped; a 429
//     without one holds back for the backoff), no redirects followed, a
//     client-side rate limit (default one request per 10 s per bucket) that
//     serves fetches first come first served, one request in flight per
//     chip and TCB however many verifications miss at once, and a short
//     negative cache for 404.
//   - Bounded waiting: a lookup waits for a fetch at most FetchWait (10 s;
//     all the waits of one API request together) and then fails with
//     vcek_unavailable and a Retry-After hint while the fetch goes on in
//     the background until FetchTimeout, so that the guest's retry finds
//     the key cached. Evidence names its chip before it is verified, so
//     the fetches made-up chip ids may cause are bounded: 32 fetches at
//     once (one nobody waits for gives its place to a new one), 256 lookups
//     waiting at once; per client (attest.WithClient: the API's client
//     certificate or address) one fetch running, 16 lookups waiting and a
//     budget of KDS requests (ClientMissBurst, then one per
//     ClientMissInterval); per nonce (attest.WithNonce) KDS requests for
//     one chip and TCB only. Clients and nonces are remembered in bounded
//     LRUs.
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
