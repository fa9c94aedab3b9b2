// Package policy appraises verified claims with a Rego policy (OPA, Rego
// v1), evaluated in process (SPEC "Policy and reference values").
//
// The query is one decision document, data.trustgate.decision:
//
//	{"allow": bool, "reasons": [string...], "label": string, "resources": [string...]}
//
// Its input is the claims of one verified report (attest.Claims as JSON).
// The reference values are at data.reference_values, in SPEC's schema
// (measurements[].value/label/expires/resources, min_tcb, allowed_vmpl), so
// a custom policy can use them. Undefined, a wrong shape or an evaluation
// error mean deny. The policy is compiled and prepared once, and swapped
// atomically on Reload; a policy that fails to compile leaves the old one in
// place. Builtins that reach the network or the runtime environment are
// refused, builtin errors are strict, and time.now_ns() is the Engine's
// clock.
//
// The embedded default policy (default.rego) allows a report only if its
// measurement is an unexpired approved one, DEBUG is off, its VMPL is
// allowed (default [0]) and its REPORTED_TCB is at least min_tcb in every
// component; with no reference values it denies everything.
package policy
