package verifier

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/token"
)

// SNP verifies SEV-SNP evidence (snp.Verifier).
type SNP interface {
	Verify(ctx context.Context, ev snp.Evidence) (*attest.Claims, error)
}

// Policy appraises verified claims (policy.Engine).
type Policy interface {
	Evaluate(ctx context.Context, c *attest.Claims) (attest.Decision, error)
	ID() string
}

// Nonces checks and consumes nonces (challenge.Issuer).
type Nonces interface {
	Check(n attest.Nonce) error
	Consume(ctx context.Context, n attest.Nonce) error
}

// Tokens issues attestation results (token.Issuer).
type Tokens interface {
	Issue(a token.Appraisal) (tok, jti string, exp time.Time, err error)
}

// Options wires a Service. SNP, Policy, Nonces and Tokens are required;
// a nil Now means time.Now. Attempts are counted and logged by the HTTP
// layer (httpapi.Observer), not here.
type Options struct {
	SNP    SNP
	Policy Policy
	Nonces Nonces
	Tokens Tokens
	Now    func() time.Time
}

// Service runs attestations.
type Service struct{ o Options }

// New returns a Service.
func New(o Options) (*Service, error) {
	if o.SNP == nil || o.Policy == nil || o.Nonces == nil || o.Tokens == nil {
		return nil, errors.New("verifier: SNP, Policy, Nonces and Tokens are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o: o}, nil
}

// AttestInput is one POST /v1/attest.
type AttestInput struct {
	Nonce     attest.Nonce
	TEE       string
	Report    []byte
	CertTable []byte
	// TEEPubKey is the guest's ephemeral public key (a JWK), or nil.
	TEEPubKey *jose.JSONWebKey
}

// ExpectedReportData returns what REPORT_DATA must hold (SPEC rule 2): the
// nonce itself without a key, SHA-512(nonce ‖ thumbprint) with one, where
// thumbprint is the key's 32-byte RFC 7638 SHA-256 JWK thumbprint.
func ExpectedReportData(n attest.Nonce, key *jose.JSONWebKey) ([64]byte, error) {
	if key == nil {
		return n, nil
	}
	tp, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return [64]byte{}, attest.Errorf(attest.ReasonMalformedEvidence, "tee_pubkey: %w", err)
	}
	return attest.BindReportData(n, tp), nil
}

// ParseTEEPubKey parses a guest's ephemeral key: a public EC JWK on P-256
// or P-384, the curves JOSE's ECDH-ES key agreement uses for release
// (malformed_evidence otherwise). An empty raw means no key.
func ParseTEEPubKey(raw json.RawMessage) (*jose.JSONWebKey, error) {
	if len(raw) == 0 {
		return nil, nil
	}
	var k jose.JSONWebKey
	if err := k.UnmarshalJSON(raw); err != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "tee_pubkey: %w", err)
	}
	ek, ok := k.Key.(*ecdsa.PublicKey)
	if !ok || !k.Valid() || (ek.Curve != elliptic.P256() && ek.Curve != elliptic.P384()) {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "tee_pubkey must be a public EC key on P-256 or P-384")
	}
	return &k, nil
}

// Attest runs one attestation and returns the token.
func (s *Service) Attest(ctx context.Context, in AttestInput) (tok string, err error) {
	if in.TEE != "sev-snp" {
		return "", attest.Errorf(attest.ReasonMalformedEvidence, "unsupported tee %q", in.TEE)
	}
	if err := s.o.Nonces.Check(in.Nonce); err != nil {
		return "", err
	}
	want, err := ExpectedReportData(in.Nonce, in.TEEPubKey)
	if err != nil {
		return "", err
	}
	// The nonce goes with the verification: it bounds the certificate
	// fetches a report that fails may cause (it is free to repeat).
	claims, err := s.o.SNP.Verify(attest.WithNonce(ctx, in.Nonce), snp.Evidence{Report: in.Report, CertTable: in.CertTable})
	if err != nil {
		return "", err
	}
	if subtle.ConstantTimeCompare(claims.ReportData, want[:]) != 1 {
		return "", attest.Errorf(attest.ReasonReportDataMismatch, "REPORT_DATA does not bind this nonce and key")
	}
	d, err := s.o.Policy.Evaluate(ctx, claims)
	if err != nil {
		return "", err
	}
	if err := d.Err(); err != nil {
		return "", err
	}
	policyID := s.o.Policy.ID()
	claims = nil // evaluated; dropped before anything is recorded
	if err := s.o.Nonces.Consume(ctx, in.Nonce); err != nil {
		return "", err
	}
	tok, _, _, err = s.o.Tokens.Issue(token.Appraisal{
		TEE: in.TEE, Status: "affirming", PolicyID: policyID, Label: d.Label, Resources: d.Resources, TEEPubKey: in.TEEPubKey,
	})
	if err != nil {
		return "", attest.Errorf(attest.ReasonInternalError, "signing token: %w", err)
	}
	return tok, nil
}

// VerifyPlain is POST /verify: body is a raw report, optionally followed by
// the extended report's certificate table; REPORT_DATA must be a fresh
// nonce of this verifier, used as is. The policy decides as for Attest.
func (s *Service) VerifyPlain(ctx context.Context, body []byte) (err error) {
	if len(body) < snp.ReportSize {
		return attest.Errorf(attest.ReasonMalformedEvidence, "body is %d bytes, shorter than a report", len(body))
	}
	report, table := body[:snp.ReportSize], body[snp.ReportSize:]
	var n attest.Nonce
	copy(n[:], report[0x50:0x90]) // REPORT_DATA, unverified: only a candidate until the signature holds
	if err := s.o.Nonces.Check(n); err != nil {
		return err
	}
	claims, err := s.o.SNP.Verify(attest.WithNonce(ctx, n), snp.Evidence{Report: report, CertTable: table})
	if err != nil {
		return err
	}
	// n was read at a fixed offset of bytes not yet verified, only to
	// refuse an unknown nonce before the costly signature check; the
	// nonce consumed below must be the REPORT_DATA the TEE verifier
	// vouches for.
	if subtle.ConstantTimeCompare(claims.ReportData, n[:]) != 1 {
		return attest.Errorf(attest.ReasonReportDataMismatch, "REPORT_DATA is not the nonce")
	}
	d, err := s.o.Policy.Evaluate(ctx, claims)
	if err != nil {
		return err
	}
	if err := d.Err(); err != nil {
		return err
	}
	return s.o.Nonces.Consume(ctx, n)
}
