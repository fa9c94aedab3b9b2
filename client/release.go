package client

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	v1 "github.com/trustgate/trustgate/api/v1"
)

// ErrUntrustedRelease is wrapped by every error of OpenRelease: the release
// was not opened, and nothing of it may be used.
var ErrUntrustedRelease = errors.New("release not trusted")

// ReleaseCheck is what a release must match to be opened. All fields are
// required.
type ReleaseCheck struct {
	// Key is the ephemeral private key bound in REPORT_DATA at
	// attestation: the JWE is decrypted with it, and the release must be
	// bound to its thumbprint.
	Key *ecdsa.PrivateKey
	// Token is the attestation token the release was bought with: the
	// release must name its jti.
	Token string
	// Resources are the names asked for: the release holds exactly these.
	Resources []string
	// VerifierKeys are the verifier keys trusted to sign releases (a JWKS
	// pinned with --verifier-jwks, or fetched over TLS that verified or on
	// loopback); the inner JWS names one of them by kid.
	VerifierKeys jose.JSONWebKeySet
}

// OpenRelease opens a release (SPEC rule 4 and "Agent trust in the
// verifier"), checking in this order: the JWE is compact, ECDH-ES with
// A256GCM, uncompressed, cty JWT, and decrypts with c.Key; its plaintext
// is a compact JWS, ES256, typ JWT, whose kid names a key of
// c.VerifierKeys and whose signature verifies under it; its protected
// header binds it to c.Token's jti and to c.Key's thumbprint; its payload
// is {"<name>": "<base64>"} holding exactly c.Resources. Only then are
// the resources returned, by name; on any failure nothing is, and the
// error wraps ErrUntrustedRelease. The caller should clear the returned
// bytes once written.
func OpenRelease(jwe string, c ReleaseCheck) (map[string][]byte, error) {
	fail := func(format string, a ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrUntrustedRelease}, a...)...)
	}
	if c.Key == nil || c.Key.Curve != elliptic.P256() {
		return nil, fail("the key bound at attestation must be a P-256 key")
	}
	jti, err := tokenID(c.Token)
	if err != nil {
		return nil, fail("%w", err)
	}
	jkt, err := (&jose.JSONWebKey{Key: c.Key.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fail("%w", err)
	}

	enc, err := jose.ParseEncryptedCompact(jwe, []jose.KeyAlgorithm{jose.ECDH_ES}, []jose.ContentEncryption{jose.A256GCM})
	if err != nil {
		return nil, fail("not a release JWE (ECDH-ES, A256GCM): %w", err)
	}
	if cty, _ := enc.Header.ExtraHeaders[jose.HeaderContentType].(string); !strings.EqualFold(cty, "JWT") {
		return nil, fail("the JWE's cty is %q, not JWT: an unsigned release", cty)
	}
	if _, ok := enc.Header.ExtraHeaders["zip"]; ok {
		return nil, fail("a compressed release")
	}
	inner, err := enc.Decrypt(c.Key)
	if err != nil {
		return nil, fail("cannot decrypt the release (is it for this key?): %w", err)
	}
	defer clear(inner)

	jws, err := jose.ParseSignedCompact(string(inner), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, fail("the release's content is not an ES256 JWS: %w", err)
	}
	h := jws.Signatures[0].Protected
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, "JWT") {
		return nil, fail("the release's JWS has typ %q, not JWT", typ)
	}
	var payload []byte
	for _, k := range c.VerifierKeys.Keys {
		if h.KeyID == "" || k.KeyID != h.KeyID {
			continue
		}
		pub := k.Public()
		if _, ok := pub.Key.(*ecdsa.PublicKey); !ok {
			continue
		}
		if payload, err = jws.Verify(pub.Key); err == nil {
			break
		}
	}
	if payload == nil {
		return nil, fail("the release is not signed by a trusted verifier key (kid %q)", h.KeyID)
	}
	defer clear(payload)
	if got, _ := h.ExtraHeaders[v1.HeaderReleaseTokenID].(string); got != jti {
		return nil, fail("the release is bound to another token")
	}
	if got, _ := h.ExtraHeaders[v1.HeaderReleaseKeyThumbprint].(string); got != base64.RawURLEncoding.EncodeToString(jkt) {
		return nil, fail("the release is bound to another key")
	}

	var out map[string][]byte
	if err := json.Unmarshal(payload, &out); err != nil {
		return nil, fail("release payload: %w", err)
	}
	for name := range out {
		if !slices.Contains(c.Resources, name) {
			clearAll(out)
			return nil, fail("the verifier released %q, which was not asked for", name)
		}
	}
	for _, name := range c.Resources {
		if _, ok := out[name]; !ok {
			clearAll(out)
			return nil, fail("the verifier did not release %q", name)
		}
	}
	return out, nil
}

func clearAll(m map[string][]byte) {
	for _, b := range m {
		clear(b)
	}
}

// tokenID is the jti of a token, read without verifying it: the release's
// signature, not the token's, is what the agent relies on; the jti only
// ties the release to this attestation.
func tokenID(tok string) (string, error) {
	parsed, err := jwt.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256, jose.ES384})
	if err != nil {
		return "", fmt.Errorf("the attestation token: %w", err)
	}
	var c jwt.Claims
	if err := parsed.UnsafeClaimsWithoutVerification(&c); err != nil || c.ID == "" {
		return "", errors.New("the attestation token has no jti")
	}
	return c.ID, nil
}

// ParseJWKS parses a verifier's JWKS (the body of /.well-known/jwks.json,
// or a file saved from it) and returns its ReleaseKeys.
func ParseJWKS(b []byte) (jose.JSONWebKeySet, error) {
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(b, &set); err != nil {
		return jose.JSONWebKeySet{}, fmt.Errorf("not a JWKS: %w", err)
	}
	return ReleaseKeys(set)
}

// ReleaseKeys keeps the keys of a verifier's JWKS a release may be signed
// with: public ECDSA P-256 keys with a kid. A set holding a private key,
// or no usable key, is refused.
func ReleaseKeys(set jose.JSONWebKeySet) (jose.JSONWebKeySet, error) {
	var keep []jose.JSONWebKey
	for _, k := range set.Keys {
		if !k.IsPublic() {
			return jose.JSONWebKeySet{}, errors.New("the JWKS holds a private key: give the verifier's public keys only")
		}
		if pub, ok := k.Key.(*ecdsa.PublicKey); ok && pub.Curve == elliptic.P256() && k.KeyID != "" {
			keep = append(keep, k)
		}
	}
	if len(keep) == 0 {
		return jose.JSONWebKeySet{}, errors.New("the JWKS holds no ECDSA P-256 key with a kid")
	}
	return jose.JSONWebKeySet{Keys: keep}, nil
}
