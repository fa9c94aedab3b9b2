package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	_ "crypto/sha256" // for the JWK thumbprint
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"time"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/secretfile"
)

// DefaultLifetime is a token's lifetime when Options.Lifetime is 0.
const DefaultLifetime = 60 * time.Second

// EARProfile is the eat_profile of an EAR (draft-ietf-rats-ear).
const EARProfile = "tag:github.com,2023:veraison/ear"

// Options configures an Issuer.
type Options struct {
	// Key signs tokens (P-256, ES256). Required.
	Key *ecdsa.PrivateKey
	// Issuer is the "iss" claim and ear.verifier-id's developer; "" means
	// "trustgate".
	Issuer string
	// Build is ear.verifier-id's build, e.g. the version.
	Build string
	// Lifetime of a token; 0 means DefaultLifetime.
	Lifetime time.Duration
	// DevSimulator marks every token as issued by a verifier that trusts
	// the simulator's AMD root.
	DevSimulator bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Issuer signs EAR tokens. It is safe for concurrent use.
type Issuer struct {
	o      Options
	signer jose.Signer
	jwk    jose.JSONWebKey
}

// New returns an Issuer.
func New(o Options) (*Issuer, error) {
	if o.Key == nil || o.Key.Curve != elliptic.P256() {
		return nil, errors.New("token key must be an ECDSA P-256 key")
	}
	if o.Issuer == "" {
		o.Issuer = "trustgate"
	}
	if o.Lifetime <= 0 {
		o.Lifetime = DefaultLifetime
	}
	if o.Now == nil {
		o.Now = time.Now
	}
	pub := jose.JSONWebKey{Key: o.Key.Public(), Algorithm: string(jose.ES256), Use: "sig"}
	tp, err := pub.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, err
	}
	pub.KeyID = base64.RawURLEncoding.EncodeToString(tp)
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: o.Key, KeyID: pub.KeyID}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		return nil, err
	}
	return &Issuer{o: o, signer: signer, jwk: pub}, nil
}

// Appraisal is what a token says about one attested guest.
type Appraisal struct {
	TEE       string           // submodule name, e.g. "sev-snp"
	Status    string           // "affirming"
	PolicyID  string           // ear.appraisal-policy-id
	Label     string           // label of the matched reference value
	TEEPubKey *jose.JSONWebKey // the guest's ephemeral key bound in REPORT_DATA; nil if none
	Resources []string         // what this guest may receive (kept in the token for release)
}

// Submodule is one TEE's entry of an EAR's submods.
type Submodule struct {
	Status    string           `json:"ear.status"`
	PolicyID  string           `json:"ear.appraisal-policy-id"`
	Label     string           `json:"trustgate.label,omitempty"`
	TEEPubKey *jose.JSONWebKey `json:"trustgate.tee_pubkey,omitempty"`
	Resources []string         `json:"trustgate.resources,omitempty"`
}

// VerifierID is an EAR's ear.verifier-id.
type VerifierID struct {
	Developer string `json:"developer"`
	Build     string `json:"build"`
}

// EAR is the claims set of a trustgate token.
type EAR struct {
	jwt.Claims
	Profile      string               `json:"eat_profile"`
	VerifierID   VerifierID           `json:"ear.verifier-id"`
	Submods      map[string]Submodule `json:"submods"`
	DevSimulator bool                 `json:"trustgate.dev_simulator,omitempty"`
}

// Issue signs a token for a and returns it with its jti and expiry.
func (i *Issuer) Issue(a Appraisal) (tok, jti string, exp time.Time, err error) {
	var id [16]byte
	rand.Read(id[:])
	jti = base64.RawURLEncoding.EncodeToString(id[:])
	now := i.o.Now()
	exp = now.Add(i.o.Lifetime)
	ear := EAR{
		Claims: jwt.Claims{
			Issuer: i.o.Issuer, ID: jti,
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(exp),
		},
		Profile:      EARProfile,
		VerifierID:   VerifierID{Developer: i.o.Issuer, Build: i.o.Build},
		Submods:      map[string]Submodule{a.TEE: {Status: a.Status, PolicyID: a.PolicyID, Label: a.Label, TEEPubKey: a.TEEPubKey, Resources: a.Resources}},
		DevSimulator: i.o.DevSimulator,
	}
	payload, err := json.Marshal(ear)
	if err != nil {
		return "", "", time.Time{}, err
	}
	jws, err := i.signer.Sign(payload)
	if err != nil {
		return "", "", time.Time{}, err
	}
	tok, err = jws.CompactSerialize()
	return tok, jti, exp, err
}

// JWKS returns the public keys that verify this issuer's tokens.
func (i *Issuer) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{i.jwk}}
}

// Verify checks a token's signature (ES256, this issuer's key), issuer and
// time window, and returns its claims; token_invalid otherwise.
func (i *Issuer) Verify(tok string) (*EAR, error) {
	return Verify(tok, i.JWKS(), i.o.Issuer, i.o.Now())
}

// Verify checks a token against a JWKS, for relying parties.
func Verify(tok string, keys jose.JSONWebKeySet, issuer string, now time.Time) (*EAR, error) {
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, attest.Errorf(attest.ReasonTokenInvalid, "parsing token: %w", err)
	}
	var ear EAR
	var verified bool
	for _, k := range keys.Keys {
		if err := parsed.Claims(k.Key, &ear); err == nil {
			verified = true
			break
		}
	}
	if !verified {
		return nil, attest.Errorf(attest.ReasonTokenInvalid, "token is not signed by a known key")
	}
	if err := ear.Claims.ValidateWithLeeway(jwt.Expected{Issuer: issuer, Time: now}, 0); err != nil {
		return nil, attest.Errorf(attest.ReasonTokenInvalid, "%w", err)
	}
	if ear.ID == "" || ear.Profile != EARProfile {
		return nil, attest.Errorf(attest.ReasonTokenInvalid, "token is not a trustgate EAR")
	}
	return &ear, nil
}

// maxKeyFile bounds a token key file (a PEM key is a few hundred bytes).
const maxKeyFile = 64 << 10

// LoadOrGenerateKey reads a P-256 private key (PEM, SEC 1 or PKCS #8) from
// path, or generates one when path is "" (generated reports true). A file
// readable or writable by group or others is refused (secretfile.Read).
func LoadOrGenerateKey(path string) (key *ecdsa.PrivateKey, generated bool, err error) {
	if path == "" {
		key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		return key, true, err
	}
	b, err := secretfile.Read(path, maxKeyFile)
	if err != nil {
		return nil, false, err
	}
	blk, _ := pem.Decode(b)
	if blk == nil {
		return nil, false, fmt.Errorf("%s: no PEM block", path)
	}
	if k, err := x509.ParseECPrivateKey(blk.Bytes); err == nil {
		return k, false, nil
	}
	k, err := x509.ParsePKCS8PrivateKey(blk.Bytes)
	if err != nil {
		return nil, false, fmt.Errorf("%s: %w", path, err)
	}
	ek, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, false, fmt.Errorf("%s: not an ECDSA key", path)
	}
	return ek, false, nil
}
