package token

import (
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	jose "github.com/go-jose/go-jose/v4"
)

// compactSigner signs compact JWSs (ES256) with one fixed protected header,
// the one jose's signer for the issuer writes (alg ES256, kid, typ JWT):
// the token's bytes are what jose would give, for a tenth of jose's
// allocations (it marshals and encodes the header at every signature).
type compactSigner struct {
	key    *ecdsa.PrivateKey // P-256
	header string            // the protected header, base64url
}

// newCompactSigner takes the protected header of s, jose's signer with key.
func newCompactSigner(s jose.Signer, key *ecdsa.PrivateKey) (*compactSigner, error) {
	jws, err := s.Sign([]byte("{}"))
	if err != nil {
		return nil, err
	}
	compact, err := jws.CompactSerialize()
	if err != nil {
		return nil, err
	}
	header, _, _ := strings.Cut(compact, ".")
	return &compactSigner{key: key, header: header}, nil
}

// sign returns header.payload.signature, the signature ES256's (RFC 7518
// §3.4: R and S, 32 bytes each, over SHA-256 of header.payload).
func (c *compactSigner) sign(payload []byte) (string, error) {
	enc := base64.RawURLEncoding
	buf := make([]byte, 0, len(c.header)+1+enc.EncodedLen(len(payload))+1+enc.EncodedLen(64))
	buf = append(buf, c.header...)
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, payload)
	digest := sha256.Sum256(buf)
	r, s, err := ecdsa.Sign(rand.Reader, c.key, digest[:])
	if err != nil {
		return "", err
	}
	var sig [64]byte
	r.FillBytes(sig[:32])
	s.FillBytes(sig[32:])
	buf = append(buf, '.')
	buf = enc.AppendEncode(buf, sig[:])
	return string(buf), nil
}
