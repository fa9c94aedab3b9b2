package token

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

// A token is the compact JWS jose would write: three base64url parts, the
// protected header exactly jose's for the issuer (alg ES256, kid of the
// JWKS, typ JWT), the payload as given, and a 64-byte ES256 signature that
// jose verifies under the JWKS key; each signature is a fresh one.
func TestTokenIsJoseCompactJWS(t *testing.T) {
	t.Parallel()
	i := newIssuer(t, nil)
	tok, _, _, err := i.Issue(Appraisal{TEE: "sev-snp", Status: "affirming", PolicyID: "sha256:ab", Label: "b"})
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("%d parts", len(parts))
	}
	ref, err := i.signer.Sign([]byte(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	refTok, _ := ref.CompactSerialize()
	if want := strings.Split(refTok, ".")[0]; parts[0] != want {
		t.Errorf("header %s, jose's %s", parts[0], want)
	}
	hdr, _ := base64.RawURLEncoding.DecodeString(parts[0])
	var h map[string]string
	if err := json.Unmarshal(hdr, &h); err != nil || h["alg"] != "ES256" || h["typ"] != "JWT" || h["kid"] != i.JWKS().Keys[0].KeyID || len(h) != 3 {
		t.Errorf("header %s (%v)", hdr, err)
	}
	if sig, err := base64.RawURLEncoding.DecodeString(parts[2]); err != nil || len(sig) != 64 {
		t.Errorf("signature of %d bytes (%v)", len(sig), err)
	}
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	payload, err := jws.Verify(i.JWKS().Keys[0].Key)
	if err != nil {
		t.Fatal(err)
	}
	if want, _ := base64.RawURLEncoding.DecodeString(parts[1]); string(payload) != string(want) || !json.Valid(payload) {
		t.Errorf("payload %s", payload)
	}
	a, _ := i.tokens.sign([]byte(`{"a":1}`))
	b, _ := i.tokens.sign([]byte(`{"a":1}`))
	if a == b {
		t.Error("two signatures of one payload are equal: not randomized")
	}
}
