package admin

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustgate/trustgate/internal/refvalues"
)

// strictBodies are approval entries encoding/json alone would take: a key
// twice (last wins), a key in another case than its field's, an unknown
// key, data after the object.
func strictBodies(valid string) map[string]string {
	return map[string]string{
		"key twice":      `{"value":"` + valB + `","label":"build-2","label":"file-1"}`,
		"key case":       `{"VALUE":"` + valB + `","label":"build-2"}`,
		"key case label": `{"value":"` + valB + `","Label":"build-2"}`,
		"unknown key":    `{"value":"` + valB + `","label":"build-2","labels":"x"}`,
		"trailing":       valid + `{}`,
		"trailing brace": valid + `}`,
	}
}

// The admin API decodes an approval entry as strictly as the public API
// decodes its bodies (strictjson), whether it comes as plain JSON or as
// the payload of a signed entry: each is 400 malformed_request and nothing
// comes into force.
func TestApprovalBodiesDecodedStrictly(t *testing.T) {
	t.Parallel()
	auth := "Bearer " + token
	f := newFixture(t, &MemoryStore{}, nil, Options{})
	for name, body := range strictBodies(entry(valB, "build-2")) {
		if a := f.do(t, "POST", PathMeasurements, auth, body); a.code != http.StatusBadRequest || a.reason != ReasonMalformedRequest {
			t.Errorf("%s: %d %s, want 400 %s", name, a.code, a.body, ReasonMalformedRequest)
		}
	}
	if allows(t, f.engine, valB) != "" {
		t.Fatal("a leniently decoded entry came into force")
	}

	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	g := newFixture(t, &MemoryStore{}, &key.PublicKey, Options{})
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key},
		(&jose.SignerOptions{}).WithType(refvalues.EntrySigType))
	if err != nil {
		t.Fatal(err)
	}
	valid := `{"value":"` + valB + `","label":"build-2","iat":1765000000,"jti":"0123456789abcdef"}`
	bodies := strictBodies(valid)
	bodies["key twice"] = `{"value":"` + valB + `","label":"build-2","iat":1765000000,"jti":"a","jti":"b"}`
	bodies["key case"] = `{"Value":"` + valB + `","label":"build-2","iat":1765000000,"jti":"0123456789abcdef"}`
	bodies["valid"] = valid
	for name, payload := range bodies {
		obj, err := signer.Sign([]byte(payload))
		if err != nil {
			t.Fatal(err)
		}
		jws, _ := obj.CompactSerialize()
		a := g.do(t, "POST", PathMeasurements, auth, jws)
		if name == "valid" {
			if a.code != http.StatusCreated {
				t.Fatalf("signed valid entry: %d %s", a.code, a.body)
			}
			continue
		}
		if a.code != http.StatusBadRequest || a.reason != ReasonMalformedRequest {
			t.Errorf("signed, %s: %d %s, want 400 %s", name, a.code, a.body, ReasonMalformedRequest)
		}
	}
}
