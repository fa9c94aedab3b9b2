package httpapi

import "github.com/trustgate/trustgate/internal/attest"

// message is the fixed client-facing text of a reason.
func message(r attest.Reason) string {
	switch r {
	case attest.ReasonMalformedEvidence:
		return "the request or its evidence is not well formed"
	case attest.ReasonUnsupportedVersion:
		return "the attestation report version is not supported"
	case attest.ReasonSignatureInvalid:
		return "the report signature does not verify"
	case attest.ReasonCertChainInvalid:
		return "the endorsement key does not chain to a trusted AMD root"
	case attest.ReasonVCEKUnavailable:
		return "the endorsement key certificate is unavailable; retry later"
	case attest.ReasonCertRevoked:
		return "the endorsement key has been revoked"
	case attest.ReasonTCBMismatch:
		return "the endorsement key does not match the report's TCB"
	case attest.ReasonTCBBelowMinimum:
		return "the platform TCB is below the minimum"
	case attest.ReasonNonceInvalid:
		return "the nonce was not issued by this verifier"
	case attest.ReasonNonceExpired:
		return "the nonce has expired; request a new challenge"
	case attest.ReasonNonceReplayed:
		return "the nonce has already been used"
	case attest.ReasonReportDataMismatch:
		return "REPORT_DATA does not bind the nonce and key"
	case attest.ReasonDebugEnabled:
		return "the guest policy allows debugging"
	case attest.ReasonVMPLNotAllowed:
		return "the report's VMPL is not allowed"
	case attest.ReasonMeasurementMismatch:
		return "the launch measurement is not approved"
	case attest.ReasonPolicyDenied:
		return "the appraisal policy denied the attestation"
	case attest.ReasonTokenInvalid:
		return "the token is not valid"
	case attest.ReasonTokenReplayed:
		return "the token has already been used"
	case attest.ReasonResourceForbidden:
		return "the resource is not granted to this guest"
	case attest.ReasonUnauthorizedClient:
		return "the client is not authorized"
	case attest.ReasonStoreUnavailable:
		return "the verifier's store is unavailable; retry later"
	case attest.ReasonCollateralUnavailable:
		return "Intel's collateral for this platform is unavailable; retry later"
	case attest.ReasonCollateralInvalid:
		return "Intel's collateral for this platform does not verify"
	case attest.ReasonTCBOutOfDate:
		return "the platform TCB is out of date"
	case attest.ReasonTCBRevoked:
		return "the platform TCB has been revoked"
	case attest.ReasonPolicyUnavailable:
		return "the policy engine is unavailable; retry later"
	case attest.ReasonApprovalReplayed:
		return "the approval was accepted before, or signed before the last withdrawal of its label"
	}
	if len(r) > len("policy_") && r[:len("policy_")] == "policy_" {
		return "the appraisal policy denied the attestation"
	}
	return "internal error"
}
