// Package httpapi serves trustgate's HTTP API v1 (SPEC "HTTP API v1"):
// routes, body limits, strict JSON, and the mapping of reason codes to HTTP
// statuses. Handlers read and validate the request, call the domain once,
// and render once; an error body carries a reason code and a fixed message
// for that reason, never the operator's detail.
//
// The HTTP layer is the one place where attempts are counted and logged:
// every request to POST /v1/challenge, /v1/attest, /verify and /v1/release
// passes through one wrapper (counted) that tells Options.Observer its
// outcome and writes one log line with its result and reason only,
// whatever refused it: the client-certificate check (401
// unauthorized_client), the 64 KiB limit (413), strict JSON (400), or the
// domain. A TEE the client named is logged and counted as "sev-snp", "tdx"
// or "unknown", never as sent. Issued nonces are counted, not logged.
package httpapi
