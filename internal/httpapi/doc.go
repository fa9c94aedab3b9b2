// Package httpapi serves trustgate's HTTP API v1 (SPEC "HTTP API v1"):
// routes, body limits, strict JSON, and the mapping of reason codes to HTTP
// statuses. Handlers read and validate the request, call the domain once,
// and render once; an error body carries a reason code and a fixed message
// for that reason, never the operator's detail.
//
// Each attempt is logged as one line with its result and reason only.
package httpapi
