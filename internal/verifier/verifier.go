package verifier

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/json"
	"errors"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/challenge"
	"github.com/trustgate/trustgate/internal/launch"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/token"
)

// TEE verifies the evidence of one TEE (an internal/tee/<name> package):
// decode, endorsement, signatures, claims. It returns the claims of
// evidence that verified, or an *attest.Error; never both nil.
type TEE interface {
	VerifyEvidence(ctx context.Context, ev attest.Evidence) (attest.Verified, error)
}

// PlainTEE is a TEE that serves the plain flow (POST /verify): it splits a
// raw body into evidence and the REPORT_DATA that evidence carries —
// unverified, only a candidate nonce until the evidence verifies.
type PlainTEE interface {
	TEE
	SplitPlain(body []byte) (attest.Evidence, attest.Nonce, error)
}

// SNP verifies SEV-SNP evidence (snp.Verifier). Options.SNP is the way
// callers that know only SEV-SNP wire it; Options.TEEs is the general one.
type SNP interface {
	Verify(ctx context.Context, ev snp.Evidence) (*attest.Claims, error)
}

// Policy appraises verified claims of any TEE (policy.Engine).
type Policy interface {
	Evaluate(ctx context.Context, c attest.Verified) (attest.Decision, error)
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

// Launches numbers the attestations of each launch (launch.Tracker).
// Lookup reads the record and gives the claims their input.launch; Begin
// does neither, for a policy that never reads input.launch; both return
// nil for evidence without a launch identity. CommitConsuming consumes the
// nonce and commits the launch, in one store step when both are in Redis;
// after a Lookup it fails with launch.ErrConflict when the record changed
// since, the claims then holding the new view. Refresh reads the record
// again (and counts its anomaly).
type Launches interface {
	Lookup(ctx context.Context, v attest.Verified) (*launch.Pending, error)
	Begin(v attest.Verified) *launch.Pending
	Refresh(ctx context.Context, p *launch.Pending, v attest.Verified) error
	CommitConsuming(ctx context.Context, p *launch.Pending, c launch.Consumer) (seq uint64, err error)
}

// JointNonces is a Nonces whose store can consume a nonce together with a
// launch commit in one step (challenge.Issuer over Redis).
type JointNonces interface {
	Nonces
	Joint() bool
	ConsumeJoint(ctx context.Context, n attest.Nonce, j *challenge.Joint) ([]any, error)
}

// LaunchBlind is a Policy that can tell whether it reads input.launch
// (policy.Engine). A Policy that is not one is taken to read it.
type LaunchBlind interface {
	IgnoresLaunch() bool
}

// Options wires a Service. At least one TEE (TEEs or SNP), Policy, Nonces
// and Tokens are required; a nil Now means time.Now. Attempts are counted
// and logged by the HTTP layer (httpapi.Observer), not here.
type Options struct {
	// TEEs are the TEE verifiers by their "tee" name (attest.TEESEVSNP,
	// attest.TEETDX); a request naming any other TEE is
	// malformed_evidence.
	TEEs map[string]TEE
	// SNP, if not nil, is registered as TEEs["sev-snp"].
	SNP    SNP
	Policy Policy
	Nonces Nonces
	Tokens Tokens
	// Launches, if not nil, numbers the attestations of POST /v1/attest
	// by launch (trustgate.launch_seq, input.launch); nil: no launch
	// tracking.
	Launches Launches
	Now      func() time.Time
}

// Service runs attestations.
type Service struct {
	o    Options
	tees map[string]TEE
}

// New returns a Service.
func New(o Options) (*Service, error) {
	tees := make(map[string]TEE, len(o.TEEs)+1)
	for name, t := range o.TEEs {
		tees[name] = t
	}
	if o.SNP != nil {
		tees[attest.TEESEVSNP] = snpTEE{o.SNP}
	}
	if len(tees) == 0 || o.Policy == nil || o.Nonces == nil || o.Tokens == nil {
		return nil, errors.New("verifier: a TEE, Policy, Nonces and Tokens are required")
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{o: o, tees: tees}, nil
}

// snpTEE adapts an SNP to TEE.
type snpTEE struct{ v SNP }

func (a snpTEE) VerifyEvidence(ctx context.Context, ev attest.Evidence) (attest.Verified, error) {
	if ev.Quote != nil || ev.Document != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "SEV-SNP evidence has no quote or document")
	}
	c, err := a.v.Verify(ctx, snp.Evidence{Report: ev.Report, CertTable: ev.CertTable})
	if err != nil {
		return nil, err
	}
	return c, nil
}

func (snpTEE) SplitPlain(body []byte) (attest.Evidence, attest.Nonce, error) {
	return snp.SplitPlain(body)
}

// AttestInput is one POST /v1/attest.
type AttestInput struct {
	Nonce attest.Nonce
	TEE   string
	// Report and CertTable are SEV-SNP evidence, Quote TDX evidence,
	// Document Nitro evidence.
	Report    []byte
	CertTable []byte
	Quote     []byte
	Document  []byte
	// Azure is the evidence of azure-snp and azure-tdx.
	Azure *attest.AzureEvidence
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
	// The key goes into the token: every member is bounded, and only the
	// key, kid, alg and use are kept (no certificates, no URLs).
	if len(raw) > MaxTEEPubKeySize {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "tee_pubkey is %d bytes, at most %d", len(raw), MaxTEEPubKeySize)
	}
	if len(k.KeyID) > maxJWKMember || len(k.Algorithm) > maxJWKMember || len(k.Use) > maxJWKMember {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "tee_pubkey: kid, alg and use are at most %d bytes each", maxJWKMember)
	}
	if len(k.Certificates) > 0 || k.CertificatesURL != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "tee_pubkey: x5c and x5u are not accepted")
	}
	return &jose.JSONWebKey{Key: ek, KeyID: k.KeyID, Algorithm: k.Algorithm, Use: k.Use}, nil
}

// MaxTEEPubKeySize bounds the tee_pubkey JWK as sent (a P-384 key with a
// kid is about 250 bytes).
const MaxTEEPubKeySize = 1024

// maxJWKMember bounds each of tee_pubkey's kid, alg and use.
const maxJWKMember = 64

// Attest runs one attestation and returns the token.
//
// With Launches, the attestation is numbered only once it is affirmed, in
// the same store step as its nonce's consumption (see the package doc), so
// that a refused or replayed attestation never advances the sequence. For
// a policy that reads input.launch, a commit that lost a race to another
// attestation of the launch gets the record as it is now and the policy is
// asked again, as often as it takes: every concurrent attestation is
// judged. A store that does not answer is 503 store_unavailable, never a
// token without its sequence number.
func (s *Service) Attest(ctx context.Context, in AttestInput) (tok string, err error) {
	tee, ok := s.tees[in.TEE]
	if !ok {
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
	a, err := s.appraise(attest.WithNonce(ctx, in.Nonce), tee, attest.Evidence{Report: in.Report, CertTable: in.CertTable, Quote: in.Quote, Document: in.Document, Azure: in.Azure}, want[:], s.o.Launches != nil)
	if err != nil {
		return "", err
	}
	policyID := s.o.Policy.ID()
	seq, err := s.commitLaunch(ctx, &a, in.Nonce)
	if err != nil {
		return "", err
	}
	d := a.d
	tok, _, _, err = s.o.Tokens.Issue(token.Appraisal{
		TEE: in.TEE, Status: "affirming", PolicyID: policyID, Label: d.Label, Resources: d.Resources, TEEPubKey: in.TEEPubKey, LaunchSeq: seq,
	})
	if err != nil {
		return "", attest.Errorf(attest.ReasonInternalError, "signing token: %w", err)
	}
	return tok, nil
}

// appraisal is what appraise decided, with what commitLaunch needs.
type appraisal struct {
	d      attest.Decision
	claims attest.Verified // nil unless a launch is pending
	launch *launch.Pending // nil without launch tracking
}

// nonceUse is one attestation's nonce as a launch.Consumer.
type nonceUse struct {
	n     Nonces
	nonce attest.Nonce
}

func (u nonceUse) Joint() bool {
	j, ok := u.n.(JointNonces)
	return ok && j.Joint()
}

func (u nonceUse) Consume(ctx context.Context, j *challenge.Joint) ([]any, error) {
	if jn, ok := u.n.(JointNonces); ok && j != nil {
		return jn.ConsumeJoint(ctx, u.nonce, j)
	}
	return nil, u.n.Consume(ctx, u.nonce)
}

// commitLaunch consumes n and commits a's launch record (one store step
// with Redis), returning its sequence number (0 without one). After a
// conflict (the record a's policy decision read changed since), the policy
// is asked again with the record as it is now, until the commit holds:
// every concurrent attestation of a launch is judged, none refused for
// the race.
func (s *Service) commitLaunch(ctx context.Context, a *appraisal, n attest.Nonce) (uint64, error) {
	use := nonceUse{s.o.Nonces, n}
	if a.launch == nil {
		_, err := use.Consume(ctx, nil)
		return 0, err
	}
	for {
		seq, err := s.o.Launches.CommitConsuming(ctx, a.launch, use)
		if !errors.Is(err, launch.ErrConflict) {
			return seq, err
		}
		if err := ctx.Err(); err != nil {
			return 0, attest.Errorf(attest.ReasonStoreUnavailable, "launch record: %w", err)
		}
		d, err := s.o.Policy.Evaluate(ctx, a.claims)
		if err != nil {
			return 0, err
		}
		if err := d.Err(); err != nil {
			return 0, err
		}
		a.d = d
	}
}

// appraise is every attestation's core, in one place: the TEE verifies the
// evidence, REPORT_DATA must be exactly reportData (the one comparison,
// constant time), the launch record is read when track is set, and the
// policy must allow. The claims are dropped by the caller once the launch
// is committed; only their pseudonyms are recorded.
func (s *Service) appraise(ctx context.Context, tee TEE, ev attest.Evidence, reportData []byte, track bool) (appraisal, error) {
	claims, err := tee.VerifyEvidence(ctx, ev)
	if err != nil {
		return appraisal{}, err
	}
	if err := attest.ExpectReportData(claims, reportData); err != nil {
		return appraisal{}, attest.Errorf(attest.ReasonReportDataMismatch, "REPORT_DATA does not bind this nonce and key")
	}
	var a appraisal
	blind := false
	if track {
		var p *launch.Pending
		if lb, ok := s.o.Policy.(LaunchBlind); ok && lb.IgnoresLaunch() {
			// The record is not read before the policy, which would not
			// look at it: the commit numbers the attestation in the same
			// store step as its nonce.
			p, blind = s.o.Launches.Begin(claims), true
		} else if p, err = s.o.Launches.Lookup(ctx, claims); err != nil {
			return appraisal{}, err
		}
		if p != nil {
			a.claims, a.launch = claims, p
		}
	}
	d, err := s.o.Policy.Evaluate(ctx, claims)
	if err != nil {
		return appraisal{}, err
	}
	a.d = d
	if err := d.Err(); err != nil {
		if blind && a.launch != nil {
			// A launch anomaly counts whatever the policy decides.
			_ = s.o.Launches.Refresh(ctx, a.launch, claims)
		}
		return a, err
	}
	return a, nil
}

// PlainTEEName is the TEE of the plain flow (POST /verify), whose body is a
// raw SEV-SNP report.
const PlainTEEName = attest.TEESEVSNP

// VerifyPlain is POST /verify: body is a raw report, optionally followed by
// the extended report's certificate table; REPORT_DATA must be a fresh
// nonce of this verifier, used as is. The policy decides as for Attest.
func (s *Service) VerifyPlain(ctx context.Context, body []byte) (err error) {
	tee, ok := s.tees[PlainTEEName].(PlainTEE)
	if !ok {
		return attest.Errorf(attest.ReasonMalformedEvidence, "this verifier has no %s verifier for the plain flow", PlainTEEName)
	}
	ev, n, err := tee.SplitPlain(body)
	if err != nil {
		return err
	}
	if err := s.o.Nonces.Check(n); err != nil {
		return err
	}
	// n was read from bytes not yet verified, only to refuse an unknown
	// nonce before the costly signature check; appraise compares it with
	// the REPORT_DATA the TEE verifier vouches for, so the nonce consumed
	// below is the one the verified report holds.
	if _, err := s.appraise(attest.WithNonce(ctx, n), tee, ev, n[:], false); err != nil {
		return err
	}
	return s.o.Nonces.Consume(ctx, n)
}
