package refvalues

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustgate/trustgate/internal/strictjson"
)

// SigSuffix is appended to a reference-values file's path to name its
// detached signature: ref.yaml is signed by ref.yaml.sig.
const SigSuffix = ".sig"

// The JWS "typ" of the two kinds of signed reference values. They keep a
// file's signature from passing as an entry's and the other way round.
const (
	FileSigType  = "trustgate-refvalues+jws"
	EntrySigType = "trustgate-refvalue-entry+jws"
)

// SignatureError says why signed reference values were refused: no
// signature, one that does not parse, or one that does not verify under
// the trusted key. It never quotes the file or the signature.
type SignatureError struct {
	// Kind is "signature_missing", "signature_malformed" or
	// "signature_invalid".
	Kind string
	// Err is the detail (go-jose's error, or the file system's).
	Err error
}

// Error implements error.
func (e *SignatureError) Error() string {
	if e.Err == nil {
		return e.Kind
	}
	return e.Kind + ": " + e.Err.Error()
}

// Unwrap returns the detail.
func (e *SignatureError) Unwrap() error { return e.Err }

// SignFile returns a detached compact JWS (RFC 7515 Appendix F: the
// payload segment left empty) over data, ES256 under key, which must be a
// P-256 key. The JWS header carries alg ES256 and typ FileSigType.
func SignFile(key *ecdsa.PrivateKey, data []byte) (string, error) {
	obj, err := sign(key, FileSigType, data)
	if err != nil {
		return "", err
	}
	return obj.DetachedCompactSerialize()
}

// VerifyFile checks sig, a detached compact JWS as SignFile makes, over
// data under the trusted P-256 public key. A failure is a *SignatureError.
func VerifyFile(trust *ecdsa.PublicKey, data []byte, sig []byte) error {
	if data == nil {
		data = []byte{} // an empty file is signed too
	}
	obj, err := jose.ParseDetached(strings.TrimSpace(string(sig)), data, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return &SignatureError{Kind: "signature_malformed", Err: err}
	}
	if err := checkType(obj, FileSigType); err != nil {
		return err
	}
	if _, err := obj.Verify(trust); err != nil {
		return &SignatureError{Kind: "signature_invalid", Err: err}
	}
	return nil
}

// ReadSigned reads the file at path and, when trust is not nil, its
// detached signature path+SigSuffix, and returns the file's bytes only if
// the signature verifies over exactly those bytes (*SignatureError
// otherwise). With a nil trust it is os.ReadFile.
func ReadSigned(path string, trust *ecdsa.PublicKey) ([]byte, error) {
	data, err := os.ReadFile(path)
	if err != nil || trust == nil {
		return data, err
	}
	sig, err := os.ReadFile(path + SigSuffix)
	if err != nil {
		return nil, &SignatureError{Kind: "signature_missing", Err: err}
	}
	if err := VerifyFile(trust, data, sig); err != nil {
		return nil, err
	}
	return data, nil
}

// Approval is the payload of a signed admin approval: one entry, when it
// was signed (iat, Unix seconds) and a unique id (jti). The admin API
// accepts a jti once, ever, and refuses an approval signed before the
// last withdrawal of its label (SPEC "The gatekeeper's configuration
// never goes back").
type Approval struct {
	Measurement
	IssuedAt int64  `json:"iat"`
	ID       string `json:"jti"`
}

// SignEntry returns a compact JWS (ES256 under key, typ EntrySigType)
// whose payload is the JSON of m with iat (now) and a random jti: what the
// admin API takes when the verifier trusts only signed reference values.
func SignEntry(key *ecdsa.PrivateKey, m Measurement, now time.Time) (string, error) {
	var id [16]byte
	if _, err := rand.Read(id[:]); err != nil {
		return "", err
	}
	b, err := json.Marshal(Approval{Measurement: m, IssuedAt: now.Unix(), ID: hex.EncodeToString(id[:])})
	if err != nil {
		return "", err
	}
	obj, err := sign(key, EntrySigType, b)
	if err != nil {
		return "", err
	}
	return obj.CompactSerialize()
}

// VerifyEntry checks a compact JWS as SignEntry makes under trust and
// returns its approval, decoded strictly (strictjson: unknown keys, a key twice or spelled in
// another case, trailing data refused) and
// validated; iat and jti may be absent (0, "") in approvals signed before
// they existed, which the admin API no longer accepts. A bad signature is
// a *SignatureError; a bad entry a *ValidationError or a decoding error.
func VerifyEntry(trust *ecdsa.PublicKey, jws string) (Approval, error) {
	obj, err := jose.ParseSignedCompact(strings.TrimSpace(jws), []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return Approval{}, &SignatureError{Kind: "signature_malformed", Err: err}
	}
	if err := checkType(obj, EntrySigType); err != nil {
		return Approval{}, err
	}
	payload, err := obj.Verify(trust)
	if err != nil {
		return Approval{}, &SignatureError{Kind: "signature_invalid", Err: err}
	}
	var a Approval
	if err := strictjson.Decode(payload, &a); err != nil {
		return Approval{}, fmt.Errorf("decoding entry: %w", err)
	}
	if err := (&Set{Measurements: []Measurement{a.Measurement}}).Validate(); err != nil {
		return Approval{}, err
	}
	if len(a.ID) > 128 {
		return Approval{}, errors.New("decoding entry: jti longer than 128 characters")
	}
	return a, nil
}

// ParseEntry decodes one measurement entry (JSON, decoded strictly:
// strictjson)
// and validates it as a one-entry Set would be.
func ParseEntry(b []byte) (Measurement, error) {
	var m Measurement
	if err := strictjson.Decode(b, &m); err != nil {
		return Measurement{}, fmt.Errorf("decoding entry: %w", err)
	}
	if err := (&Set{Measurements: []Measurement{m}}).Validate(); err != nil {
		return Measurement{}, err
	}
	return m, nil
}

func checkType(obj *jose.JSONWebSignature, want string) error {
	if len(obj.Signatures) != 1 {
		return &SignatureError{Kind: "signature_malformed", Err: errors.New("want exactly one signature")}
	}
	if typ, _ := obj.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string); typ != want {
		return &SignatureError{Kind: "signature_invalid", Err: fmt.Errorf("JWS typ %q, want %q", typ, want)}
	}
	return nil
}

func sign(key *ecdsa.PrivateKey, typ string, payload []byte) (*jose.JSONWebSignature, error) {
	if key == nil || key.Curve != elliptic.P256() {
		return nil, errors.New("signing reference values: want a P-256 key (ES256)")
	}
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
	if err != nil {
		return nil, err
	}
	return s.Sign(payload)
}

// ReadTrustKey reads the trusted public key: a PEM "PUBLIC KEY" (PKIX) on
// P-256, or a certificate whose key is one. The file is public; its mode
// is not checked.
func ReadTrustKey(path string) (*ecdsa.PublicKey, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	for blk, rest := pem.Decode(b); blk != nil; blk, rest = pem.Decode(rest) {
		var pub any
		switch blk.Type {
		case "PUBLIC KEY":
			pub, err = x509.ParsePKIXPublicKey(blk.Bytes)
		case "CERTIFICATE":
			var c *x509.Certificate
			if c, err = x509.ParseCertificate(blk.Bytes); err == nil {
				pub = c.PublicKey
			}
		default:
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("%s: %w", path, err)
		}
		k, ok := pub.(*ecdsa.PublicKey)
		if !ok || k.Curve != elliptic.P256() {
			return nil, fmt.Errorf("%s: not a P-256 public key (ES256)", path)
		}
		return k, nil
	}
	return nil, fmt.Errorf("%s: no PEM PUBLIC KEY or CERTIFICATE block", path)
}
