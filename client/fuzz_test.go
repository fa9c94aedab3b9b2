package client_test

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"slices"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustgate/trustgate/client"
)

// fixedKey is a P-256 key derived from seed, the same in every fuzz
// worker, so that the corpus's releases decrypt and verify in each.
func fixedKey(t testing.TB, seed string) *ecdsa.PrivateKey {
	t.Helper()
	d := sha256.Sum256([]byte(seed))
	k, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// fixedFixture is newFixture with fixed keys.
func fixedFixture(t testing.TB) releaseFixture {
	f := releaseFixture{verifier: fixedKey(t, "trustgate fuzz verifier"), guest: fixedKey(t, "trustgate fuzz guest")}
	f.jwks = jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: f.verifier.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}}
	f.token = signToken(t, f.verifier, "jti-1")
	return f
}

// Release modes of FuzzOpenRelease: what the fuzzed bytes are.
const (
	rawJWE      = iota // the whole JWE, as a stranger on the path could send it
	innerJWS           // the plaintext, encrypted to the guest as any verifier can
	signedClaim        // the payload, signed by the trusted key with the right bindings
)

// FuzzOpenRelease feeds OpenRelease what a hostile verifier can make: any
// JWE, any plaintext encrypted to the guest's public key, and (as if the
// verifier's key were trusted) any payload. OpenRelease must not panic;
// every refusal wraps ErrUntrustedRelease; what it opens holds exactly
// the names asked for.
func FuzzOpenRelease(f *testing.F) {
	fx := fixedFixture(f)
	genuine := fx.make(f, forged{})
	f.Add(uint8(rawJWE), genuine)
	f.Add(uint8(rawJWE), fx.make(f, forged{cty: str("")}))
	f.Add(uint8(rawJWE), fx.make(f, forged{unsigned: true}))
	f.Add(uint8(rawJWE), "a.b.c.d.e")
	f.Add(uint8(innerJWS), `{"s":"c2VjcmV0"}`)
	f.Add(uint8(innerJWS), "eyJhbGciOiJFUzI1NiJ9.e30.AAAA")
	f.Add(uint8(signedClaim), `{"s":"c2VjcmV0"}`)
	f.Add(uint8(signedClaim), `{"s":"c2VjcmV0","t":""}`)
	f.Add(uint8(signedClaim), `{"s":null}`)
	f.Add(uint8(signedClaim), `[]`)
	check := client.ReleaseCheck{Key: fx.guest, Token: fx.token, Resources: []string{"s"}, VerifierKeys: fx.jwks}
	if got, err := client.OpenRelease(genuine, check); err != nil || string(got["s"]) != "secret" {
		f.Fatalf("the genuine seed: %q, %v", got, err)
	}
	f.Fuzz(func(t *testing.T, mode uint8, in string) {
		jwe := in
		switch mode % 3 {
		case innerJWS:
			jwe = encryptTo(t, &fx.guest.PublicKey, []byte(in))
		case signedClaim:
			jwe = fx.make(t, forged{payload: in})
			if in == "" {
				return // make's default payload
			}
		}
		got, err := client.OpenRelease(jwe, check)
		if err != nil {
			if !errors.Is(err, client.ErrUntrustedRelease) || got != nil {
				t.Fatalf("refusal %v does not wrap ErrUntrustedRelease, or returned %v", err, got)
			}
			return
		}
		names := make([]string, 0, len(got))
		for n := range got {
			names = append(names, n)
		}
		if !slices.Equal(names, check.Resources) {
			t.Fatalf("opened %v, want exactly the names asked for, %v", names, check.Resources)
		}
	})
}

// encryptTo is a release JWE of plain (ECDH-ES, A256GCM, cty JWT).
func encryptTo(t testing.TB, to *ecdsa.PublicKey, plain []byte) string {
	t.Helper()
	e, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.ECDH_ES, Key: to},
		(&jose.EncrypterOptions{}).WithContentType("JWT"))
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

// FuzzParseJWKS feeds the agent's JWKS parser (a --verifier-jwks file, or
// a verifier's /.well-known/jwks.json) any bytes: it must not panic, and
// what it keeps is only public P-256 keys with a kid.
func FuzzParseJWKS(f *testing.F) {
	k := fixedKey(f, "trustgate fuzz verifier")
	for _, set := range []jose.JSONWebKeySet{
		{Keys: []jose.JSONWebKey{{Key: k.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}},
		{Keys: []jose.JSONWebKey{{Key: k, KeyID: "k1"}}},
		{Keys: []jose.JSONWebKey{{Key: k.Public()}}},
	} {
		b, err := json.Marshal(set)
		if err != nil {
			f.Fatal(err)
		}
		f.Add(b)
	}
	f.Add([]byte(`{"keys":[{"kty":"EC","crv":"P-384","kid":"x","x":"","y":""}]}`))
	f.Add([]byte(`{"keys":[{"kty":"oct","k":"AAAA","kid":"x"}]}`))
	f.Add([]byte(`{"keys":null}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		set, err := client.ParseJWKS(b)
		if err != nil {
			return
		}
		if len(set.Keys) == 0 {
			t.Fatal("an empty set accepted")
		}
		for _, k := range set.Keys {
			pub, ok := k.Key.(*ecdsa.PublicKey)
			if !ok || pub.Curve != elliptic.P256() || k.KeyID == "" || !k.IsPublic() {
				t.Fatalf("kept %+v", k)
			}
		}
	})
}
