package v1

import (
	"encoding/json"
	"time"
)

// Paths of the API.
const (
	PathChallenge = "/v1/challenge"
	PathAttest    = "/v1/attest"
	PathRelease   = "/v1/release"
	PathVerify    = "/verify"
	PathJWKS      = "/.well-known/jwks.json"
	PathHealthz   = "/healthz"
	PathReadyz    = "/readyz"
	PathMetrics   = "/metrics"
)

// MaxBodySize is the largest request body the server reads (64 KiB);
// larger bodies get 413.
const MaxBodySize = 64 << 10

// TEE names: the "tee" of an attestation request.
const (
	TEESEVSNP = "sev-snp"
	TEETDX    = "tdx"
	TEENitro  = "nitro"
	// Azure confidential VMs attested through the vTPM: the evidence is
	// {"hcl_report", "tpm_quote": {"message", "signature", "pcrs"},
	// "vcek"?} (azure-snp) or with "td_quote" (azure-tdx), as Trustee's
	// attesters write it (SPEC "Azure confidential VMs").
	TEEAzureSNP = "azure-snp"
	TEEAzureTDX = "azure-tdx"
)

// ChallengeResponse answers POST /v1/challenge.
type ChallengeResponse struct {
	Nonce     []byte    `json:"nonce"` // 64 bytes, base64 in JSON
	ExpiresAt time.Time `json:"expires_at"`
}

// AttestRequest is the body of POST /v1/attest.
type AttestRequest struct {
	Nonce     []byte          `json:"nonce"` // base64 in JSON
	TEE       string          `json:"tee"`
	Evidence  Evidence        `json:"evidence"`
	TEEPubKey json.RawMessage `json:"tee_pubkey,omitempty"` // a public JWK
}

// Evidence is the evidence of one attestation: for "sev-snp" an SEV-SNP
// report and, optionally, the extended report's certificate table; for
// "tdx" a TDX quote (version 4 or 5); for "nitro" an AWS Nitro Enclaves
// attestation document. Parts of another TEE are refused.
type Evidence struct {
	Report    []byte `json:"report,omitempty"`     // SEV-SNP: 1184 bytes, base64 in JSON
	CertTable []byte `json:"cert_table,omitempty"` // SEV-SNP: base64 in JSON
	Quote     []byte `json:"quote,omitempty"`      // TDX: base64 in JSON
	Document  []byte `json:"document,omitempty"`   // Nitro: the attestation document (COSE_Sign1), base64 in JSON
	// Azure, when not nil, is the whole evidence object of azure-snp or
	// azure-tdx (TEEAzureSNP) and is sent instead of the fields above.
	Azure json.RawMessage `json:"-"`
}

// MarshalJSON writes e: its Azure evidence object when it has one.
func (e Evidence) MarshalJSON() ([]byte, error) {
	if e.Azure != nil {
		return e.Azure, nil
	}
	type plain Evidence
	return json.Marshal(plain(e))
}

// SNPEvidence is the evidence of an SEV-SNP attestation (the name it had
// before TDX).
type SNPEvidence = Evidence

// AttestResponse answers an affirmed POST /v1/attest.
type AttestResponse struct {
	Status string `json:"status"` // "affirming"
	Token  string `json:"token"`  // EAR JWT
}

// ReleaseRequest is the body of POST /v1/release (with the token as
// "Authorization: Bearer").
type ReleaseRequest struct {
	Resources []string `json:"resources"`
}

// ReleaseResponse answers POST /v1/release: a compact JWE encrypted to the
// token's tee_pubkey (ECDH-ES, A256GCM, cty JWT) whose plaintext is a
// nested JWT: a compact JWS (ES256 with the token key, kid as in the
// JWKS, typ JWT, and the protected headers HeaderReleaseTokenID and
// HeaderReleaseKeyThumbprint) whose payload is
// {"<name>": "<base64 of the resource>", ...}.
type ReleaseResponse struct {
	JWE string `json:"jwe"`
}

// Protected header parameters of a release's inner JWS that bind it to one
// attestation (names private to trustgate, RFC 7515 section 4.3); the
// payload stays the bare {"<name>": "<base64>"} object.
const (
	// HeaderReleaseTokenID is the jti of the token that bought the release.
	HeaderReleaseTokenID = "trustgate.token_jti"
	// HeaderReleaseKeyThumbprint is the RFC 7638 SHA-256 thumbprint
	// (base64url, no padding) of the tee_pubkey the release is for.
	HeaderReleaseKeyThumbprint = "trustgate.tee_jkt"
)

// VerifyResponse answers an accepted POST /verify.
type VerifyResponse struct {
	Status string `json:"status"` // "verified"
	TEE    string `json:"tee"`
}

// Error is every error body: a human message and a stable reason code.
type Error struct {
	Error  string `json:"error"`
	Reason string `json:"reason"`
}

// ReasonApprovalReplayed is the reason of the admin API's 409 for an
// approval whose jti was accepted before, or that was signed (iat) before
// the last withdrawal of its label: approving again needs a new
// signature (SPEC "The gatekeeper's configuration never goes back").
const ReasonApprovalReplayed = "approval_replayed"

// Health answers GET /healthz and GET /readyz.
type Health struct {
	Status              string `json:"status"` // "ok", "degraded" (serving the last good policy; see error) or "unavailable"
	AppraisalPolicyID   string `json:"appraisal_policy_id,omitempty"`
	Error               string `json:"error,omitempty"` // why degraded (a refused reload) or not ready (Redis down, shutting down)
	DevSimulatorTrusted bool   `json:"dev_simulator,omitempty"`
}
