// Package release is the secret-release use case (SPEC rule 4): an
// attestation token, used once, buys the resources the policy granted the
// guest, encrypted to the ephemeral key the guest bound into its report.
package release

import (
	"bytes"
	"context"
	"crypto"
	_ "crypto/sha256" // for the JWK thumbprint
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/challenge"
	"github.com/trustgate/trustgate/internal/policyids"
	"github.com/trustgate/trustgate/internal/resources"
	"github.com/trustgate/trustgate/internal/token"
)

// MaxResources bounds how many resources one release may ask for.
const MaxResources = 64

// Tokens verifies attestation tokens and signs releases with the token
// key (token.Issuer).
type Tokens interface {
	Verify(tok string) (*token.EAR, error)
	SignJWT(payload []byte, headers map[string]any) (string, error)
}

// Options wires a Service; all are required.
type Options struct {
	Tokens Tokens
	// Used records the ids of used tokens, the same kind of single-use
	// store as for nonces.
	Used      challenge.Store
	Resources resources.Store
	// Replica, when not nil, is this process's id: a token whose jti does
	// not name it (token.JTIReplica) is refused, store_unavailable (this
	// store cannot confirm it unused). For a Used
	// store that is not shared between processes, so that replicas sharing
	// the token key cannot each release once for the same token.
	Replica []byte
	// Policies, when not nil, are the appraisal-policy-ids in force: a
	// token whose ear.appraisal-policy-id was not in force within
	// policyids.Grace before it was issued is refused, token_invalid. With
	// a fleet record (Policies.Fleet) the check is done by the script that
	// records the token's use, so Used must then be a
	// challenge.JointStore; without, it is this process's memory.
	Policies *policyids.Set
}

// Service releases resources.
type Service struct{ o Options }

// New returns a Service.
func New(o Options) (*Service, error) {
	if o.Tokens == nil || o.Used == nil || o.Resources == nil {
		return nil, errors.New("release: Tokens, Used and Resources are required")
	}
	if o.Policies != nil && o.Policies.Fleet() != nil {
		if _, ok := o.Used.(challenge.JointStore); !ok {
			return nil, fmt.Errorf("release: a fleet-wide policy-id record needs a store that checks it in the same step (challenge.JointStore), not %T", o.Used)
		}
	}
	return &Service{o: o}, nil
}

// Release checks tok (signature, issuer, expiry), that it grants every one
// of names and binds a tee_pubkey, reads the resources, and makes of them
// a nested JWT (SPEC "Agent trust in the verifier"): the payload
// {"name": "<base64>", ...} is signed with the token key (ES256, the kid
// of the JWKS, typ JWT, and the protected headers
// v1.HeaderReleaseTokenID = the token's jti and
// v1.HeaderReleaseKeyThumbprint = the tee_pubkey's RFC 7638
// thumbprint, which bind the release to this attestation), then encrypted
// to that key as one compact JWE (ECDH-ES, A256GCM, cty JWT). Only then
// is the token used up: a second release with it is token_replayed. A
// refused release changes nothing.
// Nothing of the token or the resources is kept, only the jti's record
// until the token's expiry.
func (s *Service) Release(ctx context.Context, tok string, names []string) (string, error) {
	ear, err := s.o.Tokens.Verify(tok)
	if err != nil {
		return "", err
	}
	if ear.Expiry == nil {
		return "", attest.Errorf(attest.ReasonTokenInvalid, "token has no expiry")
	}
	if s.o.Replica != nil && !bytes.Equal(token.JTIReplica(ear.ID), s.o.Replica) {
		return "", attest.Errorf(attest.ReasonStoreUnavailable, "token was issued by another replica (or before a restart); without a shared store (redis) only the process that issued a token releases for it")
	}
	if len(names) == 0 || len(names) > MaxResources {
		return "", attest.Errorf(attest.ReasonMalformedEvidence, "ask for 1 to %d resources, not %d", MaxResources, len(names))
	}
	for i, n := range names {
		if err := resources.ValidName(n); err != nil {
			return "", attest.Errorf(attest.ReasonMalformedEvidence, "%w", err)
		}
		if slices.Contains(names[:i], n) {
			return "", attest.Errorf(attest.ReasonMalformedEvidence, "resource %q asked for twice", n)
		}
	}
	sub, err := submodule(ear)
	if err != nil {
		return "", err
	}
	var issued time.Time // no iat: the zero time, before every store's records, so refused
	if ear.IssuedAt != nil {
		issued = ear.IssuedAt.Time()
	}
	var joint *challenge.Joint
	if p := s.o.Policies; p != nil {
		if f := p.Fleet(); f != nil {
			joint = f.Joint(sub.PolicyID, issued)
		} else if !p.InForce(sub.PolicyID, issued) {
			return "", errPolicyUnknown
		}
	}
	for _, n := range names {
		if !slices.Contains(sub.Resources, n) {
			return "", attest.Errorf(attest.ReasonResourceForbidden, "resource %q is not granted by the token", n)
		}
	}
	if sub.TEEPubKey == nil {
		return "", attest.Errorf(attest.ReasonResourceForbidden, "the token binds no tee_pubkey, so nothing can be encrypted to the guest")
	}

	plain := make(map[string][]byte, len(names))
	defer func() {
		for _, b := range plain {
			clear(b)
		}
	}()
	for _, n := range names {
		b, err := s.o.Resources.Get(ctx, n)
		if err != nil {
			return "", err
		}
		plain[n] = b
	}
	jwe, err := s.seal(ear.ID, sub.TEEPubKey, plain)
	if err != nil {
		return "", attest.Errorf(attest.ReasonInternalError, "encrypting the resources: %w", err)
	}

	first, err := s.consume(ctx, "jti:"+ear.ID, issued, ear.Expiry.Time(), joint)
	if errors.Is(err, challenge.ErrJointRefused) {
		return "", errPolicyUnknown
	}
	if err != nil {
		return "", attest.Errorf(attest.ReasonStoreUnavailable, "recording the token's use: %w", err)
	}
	if !first {
		return "", attest.Errorf(attest.ReasonTokenReplayed, "the token was used before")
	}
	return jwe, nil
}

// errPolicyUnknown refuses a token whose appraisal-policy-id was not in
// force (Options.Policies).
var errPolicyUnknown = attest.Errorf(attest.ReasonTokenInvalid, "the token's appraisal-policy-id was not in force at this verifier's fleet when the token was issued (a token of another deployment, or of a policy long replaced)")

// consume records the token's use, with j's check in the same store step
// when j is not nil.
func (s *Service) consume(ctx context.Context, id string, issued, until time.Time, j *challenge.Joint) (bool, error) {
	if j == nil {
		return s.o.Used.Consume(ctx, id, issued, until)
	}
	js, ok := s.o.Used.(challenge.JointStore)
	if !ok {
		return false, fmt.Errorf("the store (%T) cannot check the appraisal-policy-id in the same step", s.o.Used)
	}
	first, _, err := js.ConsumeJoint(ctx, id, issued, until, j)
	return first, err
}

// submodule is the token's one affirming TEE submodule.
func submodule(ear *token.EAR) (token.Submodule, error) {
	if len(ear.Submods) != 1 {
		return token.Submodule{}, attest.Errorf(attest.ReasonTokenInvalid, "token has %d submodules, want 1", len(ear.Submods))
	}
	for _, sub := range ear.Submods {
		if sub.Status != "affirming" {
			return token.Submodule{}, attest.Errorf(attest.ReasonTokenInvalid, "token status is %q, not affirming", sub.Status)
		}
		return sub, nil
	}
	panic("unreachable")
}

// seal signs {"name": base64(bytes)} with the token key, bound to the
// token's jti and to key, and encrypts that JWS to key as a compact JWE.
func (s *Service) seal(jti string, key *jose.JSONWebKey, plain map[string][]byte) (string, error) {
	jkt, err := key.Thumbprint(crypto.SHA256)
	if err != nil {
		return "", err
	}
	body, err := json.Marshal(plain) // []byte values marshal as base64
	if err != nil {
		return "", err
	}
	defer clear(body)
	jws, err := s.o.Tokens.SignJWT(body, map[string]any{
		v1.HeaderReleaseTokenID:       jti,
		v1.HeaderReleaseKeyThumbprint: base64.RawURLEncoding.EncodeToString(jkt),
	})
	if err != nil {
		return "", err
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.ECDH_ES, Key: key},
		(&jose.EncrypterOptions{}).WithContentType("JWT"))
	if err != nil {
		return "", err
	}
	obj, err := enc.Encrypt([]byte(jws))
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}
