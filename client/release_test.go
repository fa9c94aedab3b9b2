package client_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/client"
)

func newKey(t testing.TB, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// forged describes one release; the zero changes make a genuine one.
type forged struct {
	unsigned bool                    // the plaintext is the bare JSON object, not a JWS
	signKey  *ecdsa.PrivateKey       // nil: the verifier's key
	alg      jose.SignatureAlgorithm // "": ES256
	kid      *string                 // nil: the verifier's kid
	typ      *string                 // nil: "JWT"
	jti, jkt *string                 // nil: the token's jti, the guest key's thumbprint
	payload  string                  // "": {"s": base64("secret")}
	to       *ecdsa.PublicKey        // nil: the guest's key
	keyAlg   jose.KeyAlgorithm       // "": ECDH-ES
	enc      jose.ContentEncryption  // "": A256GCM
	cty      *string                 // nil: "JWT"
}

func str(s string) *string { return &s }

type releaseFixture struct {
	verifier *ecdsa.PrivateKey
	jwks     jose.JSONWebKeySet
	guest    *ecdsa.PrivateKey
	token    string
}

func newFixture(t testing.TB) releaseFixture {
	t.Helper()
	f := releaseFixture{verifier: newKey(t, elliptic.P256()), guest: newKey(t, elliptic.P256())}
	f.jwks = jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: f.verifier.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}}
	f.token = signToken(t, f.verifier, "jti-1")
	return f
}

func signToken(t testing.TB, k *ecdsa.PrivateKey, jti string) string {
	t.Helper()
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jwt.Signed(sig).Claims(jwt.Claims{ID: jti}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func (f releaseFixture) make(t testing.TB, o forged) string {
	t.Helper()
	tp, _ := (&jose.JSONWebKey{Key: f.guest.Public()}).Thumbprint(crypto.SHA256)
	def := func(p *string, d string) string {
		if p == nil {
			return d
		}
		return *p
	}
	payload := o.payload
	if payload == "" {
		payload = `{"s":"` + base64.StdEncoding.EncodeToString([]byte("secret")) + `"}`
	}
	plain := []byte(payload)
	if !o.unsigned {
		key, alg := o.signKey, o.alg
		if key == nil {
			key = f.verifier
		}
		if alg == "" {
			alg = jose.ES256
		}
		so := &jose.SignerOptions{}
		if typ := def(o.typ, "JWT"); typ != "" {
			so.WithType(jose.ContentType(typ))
		}
		so.WithHeader(v1.HeaderReleaseTokenID, def(o.jti, "jti-1"))
		so.WithHeader(v1.HeaderReleaseKeyThumbprint, def(o.jkt, base64.RawURLEncoding.EncodeToString(tp)))
		sk := jose.JSONWebKey{Key: key, KeyID: def(o.kid, "k1")}
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: sk}, so)
		if err != nil {
			t.Fatal(err)
		}
		jws, err := sig.Sign(plain)
		if err != nil {
			t.Fatal(err)
		}
		s, _ := jws.CompactSerialize()
		plain = []byte(s)
	}
	to, keyAlg, enc := o.to, o.keyAlg, o.enc
	if to == nil {
		to = &f.guest.PublicKey
	}
	if keyAlg == "" {
		keyAlg = jose.ECDH_ES
	}
	if enc == "" {
		enc = jose.A256GCM
	}
	eo := &jose.EncrypterOptions{}
	if cty := def(o.cty, "JWT"); cty != "" {
		eo.WithContentType(jose.ContentType(cty))
	}
	e, err := jose.NewEncrypter(enc, jose.Recipient{Algorithm: keyAlg, Key: to}, eo)
	if err != nil {
		t.Fatal(err)
	}
	obj, err := e.Encrypt(plain)
	if err != nil {
		t.Fatal(err)
	}
	s, err := obj.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return s
}

// A release is opened only when it is the verifier's nested JWT for this
// key and this token, holding what was asked for; every other one is
// refused with ErrUntrustedRelease, the first being what a man in the
// middle could make before releases were signed.
func TestOpenRelease(t *testing.T) {
	t.Parallel()
	f := newFixture(t)
	check := client.ReleaseCheck{Key: f.guest, Token: f.token, Resources: []string{"s"}, VerifierKeys: f.jwks}
	got, err := client.OpenRelease(f.make(t, forged{}), check)
	if err != nil || string(got["s"]) != "secret" || len(got) != 1 {
		t.Fatalf("genuine release: %q, %v", got, err)
	}
	other := newKey(t, elliptic.P256())
	cases := []struct {
		name string
		o    forged
	}{
		{"unsigned, as before (cty application/json)", forged{unsigned: true, cty: str("application/json")}},
		{"unsigned, cty JWT", forged{unsigned: true}},
		{"signed by another key under the verifier's kid", forged{signKey: other}},
		{"signed by another key under its own kid", forged{signKey: other, kid: str("k2")}},
		{"no kid", forged{kid: str("")}},
		{"ES384", forged{signKey: newKey(t, elliptic.P384()), alg: jose.ES384}},
		{"no typ", forged{typ: str("")}},
		{"bound to another token", forged{jti: str("jti-2")}},
		{"bound to another key", forged{jkt: str(base64.RawURLEncoding.EncodeToString(make([]byte, 32)))}},
		{"no binding", forged{jti: str(""), jkt: str("")}},
		{"a resource not asked for", forged{payload: `{"s":"eA==","t":"eA=="}`}},
		{"a resource missing", forged{payload: `{}`}},
		{"payload not an object of base64", forged{payload: `{"s":1}`}},
		{"encrypted to another key", forged{to: &other.PublicKey}},
		{"A128GCM", forged{enc: jose.A128GCM}},
		{"ECDH-ES+A256KW", forged{keyAlg: jose.ECDH_ES_A256KW}},
		{"no cty", forged{cty: str("")}},
	}
	for _, c := range cases {
		got, err := client.OpenRelease(f.make(t, c.o), check)
		if !errors.Is(err, client.ErrUntrustedRelease) || got != nil {
			t.Errorf("%s: %q, %v; want ErrUntrustedRelease", c.name, got, err)
		}
	}
	// The right release checked against the wrong token or no keys.
	for name, c := range map[string]client.ReleaseCheck{
		"another token": {Key: f.guest, Token: signToken(t, f.verifier, "jti-2"), Resources: []string{"s"}, VerifierKeys: f.jwks},
		"no keys":       {Key: f.guest, Token: f.token, Resources: []string{"s"}},
		"not a token":   {Key: f.guest, Token: "x.y.z", Resources: []string{"s"}, VerifierKeys: f.jwks},
	} {
		if _, err := client.OpenRelease(f.make(t, forged{}), c); !errors.Is(err, client.ErrUntrustedRelease) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

func TestParseJWKS(t *testing.T) {
	t.Parallel()
	k := newKey(t, elliptic.P256())
	js := func(keys ...jose.JSONWebKey) []byte {
		b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	set, err := client.ParseJWKS(js(jose.JSONWebKey{Key: k.Public(), KeyID: "k1"}, jose.JSONWebKey{Key: newKey(t, elliptic.P384()).Public(), KeyID: "k2"}))
	if err != nil || len(set.Keys) != 1 || set.Keys[0].KeyID != "k1" {
		t.Fatalf("%+v, %v", set, err)
	}
	for name, b := range map[string][]byte{
		"private key": js(jose.JSONWebKey{Key: k, KeyID: "k1"}),
		"no kid":      js(jose.JSONWebKey{Key: k.Public()}),
		"only P-384":  js(jose.JSONWebKey{Key: newKey(t, elliptic.P384()).Public(), KeyID: "k2"}),
		"empty":       []byte(`{"keys":[]}`),
		"not JSON":    []byte(`keys`),
		"not a JWK":   []byte(`{"keys":[{"kty":"EC"}]}`),
	} {
		if _, err := client.ParseJWKS(b); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
