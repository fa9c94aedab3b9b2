// Package pcs is trustgate's Intel collateral service: it obtains the
// collateral TDX quotes are judged by — TCB info per FMSPC, the TD QE
// identity, the PCK CA's CRL and the Intel SGX Root CA's CRL — from Intel's
// Provisioning Certification Service (PCS API v4), and keeps it so that
// verification does not depend on PCS being up. It is the
// tdx.CollateralSource of `trustgate serve` and `trustgate verify`.
//
//   - Requests (Intel PCS API v4): GET {pcs_url}/tdx/certification/v4/tcb?fmspc=
//     (issuer chain in the TCB-Info-Issuer-Chain header),
//     /tdx/certification/v4/qe/identity (SGX-Enclave-Identity-Issuer-Chain),
//     /sgx/certification/v4/pckcrl?ca=platform|processor&encoding=der
//     (SGX-PCK-CRL-Issuer-Chain), and the Root CA's CRL at its distribution
//     point (IntelSGXRootCA.der). Issuer chains are URL-encoded PEM.
//   - Nothing is used before it verifies: every document, from PCS, a cache
//     tier or a bundle, must be the document asked for and verify under the
//     pinned Intel SGX Root CA (tdx.Collateral.Verify: TCB info and QE
//     identity signed over their exact bytes by a TCB signing certificate
//     the root signed, CRLs signed by the root or a PCK CA it signed), must
//     not be issued in the future, and must not be past its nextUpdate.
//   - Tiers: memory, a disk directory (atomic writes; survives restarts),
//     and optionally Redis (shared by replicas); the newest issued copy
//     wins, so an older document never replaces a newer one.
//   - Freshness: a document is refreshed in the background once
//     RefreshFraction of its remaining validity, or MaxAge, has passed since
//     it was fetched (before nextUpdate); while PCS fails, the held copy is
//     served for at most MaxStaleness past that point and never past its
//     nextUpdate (stale-if-error, bounded), then collateral_unavailable.
//   - The PCS client: one request in flight per document however many
//     verifications miss at once, a client-side rate limit (first come
//     first served), Retry-After honoured on 429 and 503 (capped at
//     MaxHoldBack), bounded retries with backoff, a timeout per request,
//     no redirects followed (a 3xx is an error naming its status).
//   - Bounded waiting: a verification waits at most FetchWait for a fetch,
//     then fails with collateral_unavailable while the fetch goes on in the
//     background until FetchTimeout, so that a retry finds it cached.
//   - Offline: only what the tiers hold (fetched earlier, or imported from
//     a bundle: Export, Import).
//
// Every failure is an *attest.Error with reason collateral_unavailable.
package pcs
