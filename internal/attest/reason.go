package attest

import (
	"errors"
	"fmt"
	"strings"
)

// Reason is a stable, machine-readable rejection code. Reasons are metric
// label values and part of the public contract (SPEC "Reason codes"); they
// never carry per-guest data.
type Reason string

// The reason codes of SPEC "Reason codes".
const (
	ReasonMalformedEvidence   Reason = "malformed_evidence"
	ReasonUnsupportedVersion  Reason = "unsupported_version"
	ReasonSignatureInvalid    Reason = "signature_invalid"
	ReasonCertChainInvalid    Reason = "cert_chain_invalid"
	ReasonVCEKUnavailable     Reason = "vcek_unavailable"
	ReasonCertRevoked         Reason = "cert_revoked"
	ReasonTCBMismatch         Reason = "tcb_mismatch"
	ReasonTCBBelowMinimum     Reason = "tcb_below_minimum"
	ReasonNonceInvalid        Reason = "nonce_invalid"
	ReasonNonceExpired        Reason = "nonce_expired"
	ReasonNonceReplayed       Reason = "nonce_replayed"
	ReasonReportDataMismatch  Reason = "report_data_mismatch"
	ReasonDebugEnabled        Reason = "debug_enabled"
	ReasonVMPLNotAllowed      Reason = "vmpl_not_allowed"
	ReasonMeasurementMismatch Reason = "measurement_mismatch"
	ReasonPolicyDenied        Reason = "policy_denied"
	ReasonTokenInvalid        Reason = "token_invalid"
	ReasonTokenReplayed       Reason = "token_replayed"
	ReasonResourceForbidden   Reason = "resource_forbidden"
	ReasonUnauthorizedClient  Reason = "unauthorized_client"
	ReasonStoreUnavailable    Reason = "store_unavailable"
	ReasonInternalError       Reason = "internal_error"

	// The reasons of SPEC "Additions (2026-12)", "Intel TDX".
	ReasonCollateralUnavailable Reason = "collateral_unavailable" // Intel collateral missing or not current
	ReasonCollateralInvalid     Reason = "collateral_invalid"     // Intel collateral that does not verify
	ReasonTCBOutOfDate          Reason = "tcb_out_of_date"        // OutOfDate, OutOfDateConfigurationNeeded, or no matching TCB level
	ReasonTCBRevoked            Reason = "tcb_revoked"            // Intel lists the platform's TCB level as Revoked
	ReasonPolicyUnavailable     Reason = "policy_unavailable"     // an external policy engine did not answer

	// The reason of SPEC "Additions (2026-12-07)", "The gatekeeper's
	// configuration never goes back": an admin approval whose jti was
	// accepted before, or signed (iat) before the last withdrawal of its
	// label (409 on the admin API).
	ReasonApprovalReplayed Reason = "approval_replayed"
)

// Reasons lists every built-in reason code, in SPEC order. Metrics use it to
// pre-initialise their label sets.
func Reasons() []Reason {
	return []Reason{
		ReasonMalformedEvidence, ReasonUnsupportedVersion, ReasonSignatureInvalid,
		ReasonCertChainInvalid, ReasonVCEKUnavailable, ReasonCertRevoked,
		ReasonTCBMismatch, ReasonTCBBelowMinimum, ReasonNonceInvalid,
		ReasonNonceExpired, ReasonNonceReplayed, ReasonReportDataMismatch,
		ReasonDebugEnabled, ReasonVMPLNotAllowed, ReasonMeasurementMismatch,
		ReasonPolicyDenied, ReasonTokenInvalid, ReasonTokenReplayed,
		ReasonResourceForbidden, ReasonUnauthorizedClient, ReasonStoreUnavailable,
		ReasonInternalError,
		ReasonCollateralUnavailable, ReasonCollateralInvalid, ReasonTCBOutOfDate,
		ReasonTCBRevoked, ReasonPolicyUnavailable, ReasonApprovalReplayed,
	}
}

// MaxPolicyReasonName bounds the <name> of a policy's own reason code
// policy_<name>, in characters.
const MaxPolicyReasonName = 40

// PolicyOwn reports whether r has the form of a policy's own reason code
// (SPEC "Reason codes"): "policy_" and 1 to MaxPolicyReasonName characters
// of [a-z0-9_]. policy_denied has that form too.
func (r Reason) PolicyOwn() bool {
	name, ok := strings.CutPrefix(string(r), "policy_")
	if !ok || name == "" || len(name) > MaxPolicyReasonName {
		return false
	}
	for _, c := range []byte(name) {
		if (c < 'a' || c > 'z') && (c < '0' || c > '9') && c != '_' {
			return false
		}
	}
	return true
}

// Unavailable reports whether r means a dependency was unavailable rather
// than that the evidence was judged (SPEC exit code 3).
func (r Reason) Unavailable() bool {
	switch r {
	case ReasonVCEKUnavailable, ReasonStoreUnavailable, ReasonCollateralUnavailable, ReasonPolicyUnavailable:
		return true
	}
	return false
}

// Error is the one error type of every rejection. Reason drives the metric
// label, the HTTP status and the client message; Err holds the detail for
// the operator's log and must never be sent to a client.
//
// Make one with Errorf, wrapping any cause with %w; give a reason to an
// error from elsewhere, which may carry one already, with WithReason.
type Error struct {
	Reason Reason
	Err    error
}

// Errorf returns an *Error with the given reason and a formatted detail.
// The format follows fmt.Errorf, so %w wraps.
func Errorf(reason Reason, format string, args ...any) *Error {
	return &Error{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// WithReason gives err the reason r: err itself when its reason is already
// r, otherwise err wrapped in an *Error with reason r, its detail prefixed
// by what (if not empty). A nil err stays nil.
func WithReason(r Reason, what string, err error) error {
	if err == nil || ReasonOf(err) == r {
		return err
	}
	if what != "" {
		err = fmt.Errorf("%s: %w", what, err)
	}
	return &Error{Reason: r, Err: err}
}

func (e *Error) Error() string {
	if e.Err == nil {
		return string(e.Reason)
	}
	return string(e.Reason) + ": " + e.Err.Error()
}

// Unwrap returns the detail error.
func (e *Error) Unwrap() error { return e.Err }

// ReasonOf returns the reason of the first *Error in err's chain, or
// ReasonInternalError when err carries none. It returns "" for a nil err.
func ReasonOf(err error) Reason {
	if err == nil {
		return ""
	}
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ReasonInternalError
}

// Detail returns the operator-facing detail of err without its reason
// prefix. It is for logs and local CLIs, never for remote clients.
func Detail(err error) string {
	var e *Error
	if errors.As(err, &e) && e.Err != nil {
		return e.Err.Error()
	}
	if err == nil {
		return ""
	}
	return err.Error()
}

// Status is the HTTP status a rejection with reason r maps to: 400 for
// evidence that is not well formed, 401 for a bad or used token, 503 when a
// dependency is unavailable, 500 for trustgate's own faults, and 403 for
// every other judgement (409 for approval_replayed, an admin refusal).
func (r Reason) Status() int {
	switch r {
	case ReasonMalformedEvidence:
		return 400
	case ReasonTokenInvalid, ReasonTokenReplayed, ReasonUnauthorizedClient:
		return 401
	case ReasonVCEKUnavailable, ReasonStoreUnavailable, ReasonCollateralUnavailable, ReasonPolicyUnavailable:
		return 503
	case ReasonInternalError:
		return 500
	case ReasonApprovalReplayed:
		return 409
	}
	return 403
}
