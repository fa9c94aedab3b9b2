// Package policy appraises verified claims with a Rego policy (OPA's Go
// API, Rego v1), evaluated in process (SPEC "Policy and reference values").
//
// # Contract for a policy
//
// The query is one decision document, data.trustgate.decision:
//
//	{"allow": bool, "reasons": [string...], "label": string, "resources": [string...]}
//
// "allow" is required; "label" and "resources" (the matched build and what
// it may receive) matter on allow, "reasons" (reason codes, the reported
// one first) on deny. Any other key, a key given twice (external engine),
// a wrong type, "allow": true with reasons, an undefined decision or an
// evaluation error is a deny with reason policy_denied: the policy fails
// closed. attest.Decision.Err maps a deny to its reason: the first
// reason that is measurement_mismatch, debug_enabled, vmpl_not_allowed,
// tcb_below_minimum, policy_denied or a policy's own code of the form
// policy_[a-z0-9_]{1,40} that the module declares in a constant
// reason_codes set (ReasonCodesQuery; listed in the start and reload log
// lines), else policy_denied. Other strings are dropped
// (never quoted in the response, the log or a metric label); metrics keep
// the first 32 distinct policy_<name> codes as label values and count
// later ones as policy_denied.
//
// # Errors in the files
//
// A policy or reference-values file that cannot be read, parsed, compiled
// or validated is reported as a *FileError: which file, the kind of error
// (OPA's error code, yaml_syntax_error, json_unknown_field, ...), its line
// and column and the number of errors, never a quote of the file, since
// OPA's, YAML's and JSON's own messages quote source lines, identifiers
// and values. /readyz, the reload log and serve's start-up error show it;
// `trustgate policy eval` shows the full errors.
//
// input is the claims of one verified report or quote (attest.Claims or
// attest.TDXClaims as JSON, SPEC "Claims" and "Intel TDX"; "tee" says which;
// byte strings are lowercase hex). The reference values are at
// data.trustgate.reference, in the JSON form of refvalues.Set with SPEC's
// keys:
//
//	{"measurements": [{"tee": "sev-snp"|"tdx"?, "value": hex, "label": string, "expires": RFC 3339?,
//	                   "resources": [string]?, "rtmr": [hex or ""]?}],
//	 "min_tcb": {"bootloader": n, "tee": n, "snp": n, "microcode": n, "fmc": n?}?,
//	 "allowed_vmpl": [n]?, "tdx_tcb_status": [string]?}
//
// "measurements" is always present ([] when there are none); absent
// optional keys are left out. So a custom policy must not define a rule
// named reference in package trustgate.
//
// # Sandbox
//
// The policy is compiled and its query prepared once, then swapped
// atomically by Reload; a policy that fails to compile leaves the old one
// in place. Builtins that reach the network (http.send, net.*, JSON
// schemas with remote references), the runtime environment (opa.runtime)
// or randomness (rand.intn, uuid.rfc4122) are not available, so a policy
// calling them does not compile; print calls are compiled away, so claims
// never reach a log. Builtin errors are strict (an error, hence a deny),
// and time.now_ns() is the Engine's clock (Options.Now).
//
// # Default policy
//
// The embedded default policy (default.rego, unit-tested by
// default_test.rego) allows a report only if its measurement is an
// approved one that has not expired, DEBUG is off, its VMPL is in
// allowed_vmpl (default [0]) and its REPORTED_TCB is at least min_tcb in
// every component (fmc only when the report has one). A deny lists every
// failed check: measurement_mismatch, debug_enabled, vmpl_not_allowed,
// tcb_below_minimum. With no reference values it denies everything. An
// allow carries the label and resources of the matched value (of several
// entries with the same value, the lowest label).
//
// # Signed reference values and the admin layer
//
// With Options.TrustKey, Watch and LoadSignedReference load a
// reference-values file only with a valid detached signature beside it
// (refvalues.ReadSigned); a refusal is a *FileError of kind
// signature_missing, signature_malformed or signature_invalid and keeps the
// last good set. SetOverlay puts the admin API's layer over the file's
// values (refvalues.Set.WithOverlay); Reload keeps it.
//
// # External engine
//
// Its URL is https:// (TLS verified against the system roots, or
// RemoteOptions.RootCAs: policy_ca) or names a loopback host; config
// refuses plain http:// elsewhere unless insecure_http is set: whoever is
// on that path could answer allow and read every claim.
//
// Remote asks an external engine (OPA's REST data API) instead: the
// claims are POSTed as {"input": claims}, "result" is the decision,
// checked as above. No answer in time, a transport error, a non-2xx status
// or a body that is not JSON is policy_unavailable (503); no result or a
// wrong shape is policy_denied. Never an allow on trouble.
//
// # Appraisal policy id
//
// Engine.ID is "sha256:" and the hex SHA-256 over the policy source and
// the canonical JSON of the reference values; tokens carry it as
// ear.appraisal-policy-id.
package policy
