package agent

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	_ "crypto/sha256" // for the JWK thumbprint
	"encoding/json"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustgate/trustgate/internal/attest"
)

// EphemeralKey is a guest's key for one attestation (SPEC rule 2): the
// verifier encrypts the release to it, and the report binds it through
// REPORT_DATA.
type EphemeralKey struct {
	// Private opens the release (client.ReleaseCheck.Key).
	Private *ecdsa.PrivateKey
	// JWK is the public key as a JWK, the attest request's tee_pubkey.
	JWK json.RawMessage
	// Thumbprint is the public key's 32-byte RFC 7638 SHA-256 JWK
	// thumbprint.
	Thumbprint []byte
}

// NewEphemeralKey makes a fresh P-256 key.
func NewEphemeralKey() (*EphemeralKey, error) {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	jwk := jose.JSONWebKey{Key: k.Public()}
	tp, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	pub, err := json.Marshal(jwk)
	if err != nil {
		return nil, err
	}
	return &EphemeralKey{Private: k, JWK: pub, Thumbprint: tp}, nil
}

// ReportData is the REPORT_DATA binding the verifier's nonce n and this
// key: SHA-512(n ‖ thumbprint), 64 bytes (attest.BindReportData).
func (k *EphemeralKey) ReportData(n attest.Nonce) [64]byte {
	return attest.BindReportData(n, k.Thumbprint)
}
