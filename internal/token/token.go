package token

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
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
	// the simulator's AMD root, and signs with a key derived from Key
	// (DevKey) instead of Key itself, so that a production verifier
	// given the same key file never trusts what a dev verifier signs. An
	// Issuer without DevSimulator refuses marked tokens (Verify).
	DevSimulator bool
	// Now is the clock; nil means time.Now.
	Now func() time.Time
	// Replica, when not nil, is this process's id; every jti begins with
	// it (base64url of Replica followed by 16 random bytes), so that a
	// releaser without a shared store can refuse another replica's tokens
	// (JTIReplica). nil: jtis are 16 random bytes.
	Replica []byte
}

// JTIReplica returns the replica id a jti names (the bytes before its 16
// random ones), nil if it names none or is not such a jti.
func JTIReplica(jti string) []byte {
	b, err := base64.RawURLEncoding.DecodeString(jti)
	if err != nil || len(b) <= 16 {
		return nil
	}
	return b[:len(b)-16]
}

// Issuer signs EAR tokens. It is safe for concurrent use.
type Issuer struct {
	o      Options
	signer jose.Signer
	tokens *compactSigner  // signs tokens with signer's header
	priv   jose.JSONWebKey // the signing key, with the kid of jwk
	jwk    jose.JSONWebKey
}

// New returns an Issuer.
func New(o Options) (*Issuer, error) {
	if o.Key == nil || o.Key.Curve != elliptic.P256() {
		return nil, errors.New("token key must be an ECDSA P-256 key")
	}
	if o.DevSimulator {
		k, err := DevKey(o.Key)
		if err != nil {
			return nil, err
		}
		o.Key = k
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
	i := &Issuer{o: o, priv: jose.JSONWebKey{Key: o.Key, KeyID: pub.KeyID}, jwk: pub}
	if i.signer, err = i.newSigner(nil); err != nil {
		return nil, err
	}
	if i.tokens, err = newCompactSigner(i.signer, o.Key); err != nil {
		return nil, err
	}
	return i, nil
}

// newSigner signs with the issuer's key: ES256, its kid, typ JWT, and the
// protected header parameters of headers besides.
func (i *Issuer) newSigner(headers map[string]any) (jose.Signer, error) {
	so := (&jose.SignerOptions{}).WithType("JWT")
	for k, v := range headers {
		so.WithHeader(jose.HeaderKey(k), v)
	}
	return jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: i.priv}, so)
}

// SignJWT signs payload (a JSON object) as a compact JWS with the token
// key: ES256, the kid of JWKS, typ JWT, and headers as further protected
// header parameters (nil: none; alg, kid and typ cannot be replaced). It
// is how other signed answers of the verifier, such as a release, are
// signed by the key a relying party already trusts.
func (i *Issuer) SignJWT(payload []byte, headers map[string]any) (string, error) {
	for _, k := range []string{"alg", "kid", "typ", "crit", "jwk"} {
		if _, ok := headers[k]; ok {
			return "", fmt.Errorf("header %q is set by the issuer", k)
		}
	}
	signer, err := i.newSigner(headers)
	if err != nil {
		return "", err
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		return "", err
	}
	return jws.CompactSerialize()
}

// DevKey derives from k the P-256 key a --dev-simulator issuer signs with:
// HKDF-SHA256 over k's private scalar (info "trustgate dev_simulator token
// key"), so that dev verifiers sharing a key file share this key too, and
// a production verifier, which signs and verifies with k, never trusts
// it. The derivation is one-way: the dev key says nothing about k.
func DevKey(k *ecdsa.PrivateKey) (*ecdsa.PrivateKey, error) {
	secret, err := k.Bytes()
	if err != nil {
		return nil, err
	}
	defer clear(secret)
	// A 32-byte output is at or above the order of P-256 with probability
	// about 2^-32; the next counter is then used.
	for ctr := range 256 {
		d, err := hkdf.Key(sha256.New, secret, nil, fmt.Sprintf("trustgate dev_simulator token key %d", ctr), 32)
		if err != nil {
			return nil, err
		}
		dk, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d)
		clear(d)
		if err == nil {
			return dk, nil
		}
	}
	return nil, errors.New("no dev token key could be derived")
}

// Appraisal is what a token says about one attested guest.
type Appraisal struct {
	TEE       string           // submodule name, e.g. "sev-snp"
	Status    string           // "affirming"
	PolicyID  string           // ear.appraisal-policy-id
	Label     string           // label of the matched reference value
	TEEPubKey *jose.JSONWebKey // the guest's ephemeral key bound in REPORT_DATA; nil if none
	Resources []string         // what this guest may receive (kept in the token for release)
	// LaunchSeq is the attestation's number within its launch
	// (trustgate.launch_seq: 1 for the first); 0 means none (no launch
	// tracking) and is left out.
	LaunchSeq uint64
}

// Submodule is one TEE's entry of an EAR's submods.
type Submodule struct {
	Status    string           `json:"ear.status"`
	PolicyID  string           `json:"ear.appraisal-policy-id"`
	Label     string           `json:"trustgate.label,omitempty"`
	TEEPubKey *jose.JSONWebKey `json:"trustgate.tee_pubkey,omitempty"`
	Resources []string         `json:"trustgate.resources,omitempty"`
	// LaunchSeq is trustgate.launch_seq, in the submodule of the TEE it
	// numbers (as the other per-TEE trustgate.* claims); 0: absent.
	LaunchSeq uint64 `json:"trustgate.launch_seq,omitempty"`
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
	id := make([]byte, len(i.o.Replica)+16)
	copy(id, i.o.Replica)
	rand.Read(id[len(i.o.Replica):])
	jti = base64.RawURLEncoding.EncodeToString(id)
	now := i.o.Now()
	exp = now.Add(i.o.Lifetime)
	ear := EAR{
		Claims: jwt.Claims{
			Issuer: i.o.Issuer, ID: jti,
			IssuedAt: jwt.NewNumericDate(now), NotBefore: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(exp),
		},
		Profile:      EARProfile,
		VerifierID:   VerifierID{Developer: i.o.Issuer, Build: i.o.Build},
		Submods:      map[string]Submodule{a.TEE: {Status: a.Status, PolicyID: a.PolicyID, Label: a.Label, TEEPubKey: a.TEEPubKey, Resources: a.Resources, LaunchSeq: a.LaunchSeq}},
		DevSimulator: i.o.DevSimulator,
	}
	payload, err := json.Marshal(ear)
	if err != nil {
		return "", "", time.Time{}, err
	}
	tok, err = i.tokens.sign(payload)
	return tok, jti, exp, err
}

// JWKS returns the public keys that verify this issuer's tokens.
func (i *Issuer) JWKS() jose.JSONWebKeySet {
	return jose.JSONWebKeySet{Keys: []jose.JSONWebKey{i.jwk}}
}

// Verify checks a token's signature (ES256, this issuer's key), issuer and
// time window, and returns its claims; token_invalid otherwise. An issuer
// without DevSimulator also refuses a token marked
// trustgate.dev_simulator, whoever signed it.
func (i *Issuer) Verify(tok string) (*EAR, error) {
	ear, err := Verify(tok, i.JWKS(), i.o.Issuer, i.o.Now())
	if err != nil {
		return nil, err
	}
	if ear.DevSimulator && !i.o.DevSimulator {
		return nil, attest.Errorf(attest.ReasonTokenInvalid, "a token of a --dev-simulator verifier is never honoured by a production verifier")
	}
	return ear, nil
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
