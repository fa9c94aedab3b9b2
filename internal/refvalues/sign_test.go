package refvalues

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func newKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func sigKind(err error) string {
	var se *SignatureError
	if errors.As(err, &se) {
		return se.Kind
	}
	return ""
}

// A file's signature is a detached compact JWS (RFC 7515 Appendix F) that
// any JOSE library verifies once the payload is put back; it verifies only
// the very bytes, under the very key, as a file signature.
func TestSignFile(t *testing.T) {
	t.Parallel()
	key, other := newKey(t), newKey(t)
	data := []byte("measurements:\n  - value: \"" + valA + "\"\n    label: b1\n")
	sig, err := SignFile(key, data)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(sig, ".")
	if len(parts) != 3 || parts[1] != "" {
		t.Fatalf("not a detached compact JWS: %d parts, payload %q", len(parts), parts[1])
	}
	// Appendix F: put the payload back and it is an ordinary JWS.
	full := parts[0] + "." + base64.RawURLEncoding.EncodeToString(data) + "." + parts[2]
	obj, err := jose.ParseSignedCompact(full, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := obj.Verify(&key.PublicKey); err != nil {
		t.Fatalf("reattached JWS does not verify: %v", err)
	}
	if alg := obj.Signatures[0].Header.Algorithm; alg != "ES256" {
		t.Errorf("alg %s", alg)
	}
	// The same bytes signed with an entry's typ: not a file signature.
	eobj, err := sign(key, EntrySigType, data)
	if err != nil {
		t.Fatal(err)
	}
	entrySig, _ := eobj.DetachedCompactSerialize()
	tests := []struct {
		name string
		key  *ecdsa.PublicKey
		data []byte
		sig  string
		want string
	}{
		{"valid", &key.PublicKey, data, sig, ""},
		{"valid with a newline", &key.PublicKey, data, sig + "\n", ""},
		{"other key", &other.PublicKey, data, sig, "signature_invalid"},
		{"one byte changed", &key.PublicKey, append([]byte("#"), data[1:]...), sig, "signature_invalid"},
		{"one byte added", &key.PublicKey, append(append([]byte{}, data...), '\n'), sig, "signature_invalid"},
		{"an entry's typ", &key.PublicKey, data, entrySig, "signature_invalid"},
		{"garbage", &key.PublicKey, data, "not a jws", "signature_malformed"},
		{"empty", &key.PublicKey, data, "", "signature_malformed"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			err := VerifyFile(tc.key, tc.data, []byte(tc.sig))
			if got := sigKind(err); got != tc.want || (tc.want == "" && err != nil) {
				t.Fatalf("VerifyFile: %v (kind %q), want kind %q", err, got, tc.want)
			}
		})
	}
}

func TestReadSigned(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	dir := t.TempDir()
	path := filepath.Join(dir, "ref.yaml")
	data := []byte("measurements: []\n")
	os.WriteFile(path, data, 0o644)
	if b, err := ReadSigned(path, nil); err != nil || string(b) != string(data) {
		t.Fatalf("without a trust key: %q, %v", b, err)
	}
	if _, err := ReadSigned(path, &key.PublicKey); sigKind(err) != "signature_missing" {
		t.Fatalf("no .sig: %v", err)
	}
	sig, _ := SignFile(key, data)
	os.WriteFile(path+SigSuffix, []byte(sig), 0o644)
	if b, err := ReadSigned(path, &key.PublicKey); err != nil || string(b) != string(data) {
		t.Fatalf("signed: %q, %v", b, err)
	}
	// An empty file can be signed too.
	empty := filepath.Join(dir, "empty.json")
	os.WriteFile(empty, nil, 0o644)
	sig, _ = SignFile(key, []byte{})
	os.WriteFile(empty+SigSuffix, []byte(sig), 0o644)
	if _, err := ReadSigned(empty, &key.PublicKey); err != nil {
		t.Fatalf("empty signed file: %v", err)
	}
}

func TestSignEntry(t *testing.T) {
	t.Parallel()
	key, other := newKey(t), newKey(t)
	m := Measurement{Value: valA, Label: "b2", Resources: []string{"db"}}
	jws, err := SignEntry(key, m, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	got, err := VerifyEntry(&key.PublicKey, jws)
	if err != nil || got.Label != "b2" || got.Value != valA || len(got.Resources) != 1 || got.ID == "" || got.IssuedAt == 0 {
		t.Fatalf("VerifyEntry: %+v, %v", got, err)
	}
	if _, err := VerifyEntry(&other.PublicKey, jws); sigKind(err) != "signature_invalid" {
		t.Fatalf("other key: %v", err)
	}
	// A file signature (typ of a file), reattached, is not an entry.
	payload := []byte(`{"value":"` + valA + `","label":"b2"}`)
	fsig, _ := SignFile(key, payload)
	p := strings.Split(fsig, ".")
	if _, err := VerifyEntry(&key.PublicKey, p[0]+"."+base64.RawURLEncoding.EncodeToString(payload)+"."+p[2]); sigKind(err) != "signature_invalid" {
		t.Fatalf("a file signature as an entry: %v", err)
	}
	// Signed, but not a valid entry: refused, not as a signature problem.
	obj, _ := sign(key, EntrySigType, []byte(`{"value":"`+valA+`","label":"b2","extra":1}`))
	bad, _ := obj.CompactSerialize()
	if _, err := VerifyEntry(&key.PublicKey, bad); err == nil || sigKind(err) != "" {
		t.Fatalf("unknown field: %v", err)
	}
	obj, _ = sign(key, EntrySigType, []byte(`{"value":"XYZ","label":"b2"}`))
	bad, _ = obj.CompactSerialize()
	var ve *ValidationError
	if _, err := VerifyEntry(&key.PublicKey, bad); !errors.As(err, &ve) {
		t.Fatalf("bad value: %v", err)
	}
	// Only P-256 signs.
	k384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if _, err := SignEntry(k384, m, time.Now()); err == nil {
		t.Fatal("a P-384 key signed (ES256 needs P-256)")
	}
}

func TestReadTrustKey(t *testing.T) {
	t.Parallel()
	key := newKey(t)
	dir := t.TempDir()
	der, _ := x509.MarshalPKIXPublicKey(&key.PublicKey)
	path := filepath.Join(dir, "pub.pem")
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	got, err := ReadTrustKey(path)
	if err != nil || !got.Equal(&key.PublicKey) {
		t.Fatalf("ReadTrustKey: %v", err)
	}
	k384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ = x509.MarshalPKIXPublicKey(&k384.PublicKey)
	os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644)
	if _, err := ReadTrustKey(path); err == nil {
		t.Fatal("a P-384 key was accepted")
	}
	os.WriteFile(path, []byte("nothing"), 0o644)
	if _, err := ReadTrustKey(path); err == nil {
		t.Fatal("no PEM was accepted")
	}
}

func TestWithOverlay(t *testing.T) {
	t.Parallel()
	file := &Set{
		Measurements: []Measurement{{Value: valA, Label: "a"}, {Value: valB, Label: "b"}},
		MinTCB:       &TCB{SNP: 3}, AllowedVMPL: []int{0, 1},
	}
	if got := file.WithOverlay(nil); got != file {
		t.Fatal("a nil layer changed the set")
	}
	o := &Overlay{Version: 3, Records: map[string]Record{
		"b": {By: "x"},                                          // withdraws the file's b
		"c": {Entry: &Measurement{Value: valB, Label: "c"}},     // approves c
		"a": {Entry: &Measurement{Value: valB, Label: "a"}},     // replaces the file's a
		"z": {By: "y"},                                          // withdraws what nobody approved
		"d": {Entry: &Measurement{Value: valA, Label: "wrong"}}, // the record's label wins
	}}
	got := file.WithOverlay(o)
	var labels []string
	for _, m := range got.Measurements {
		labels = append(labels, m.Label+"="+m.Value[:4])
	}
	if want := "a=" + valB[:4] + ",c=" + valB[:4] + ",d=" + valA[:4]; strings.Join(labels, ",") != want {
		t.Fatalf("effective %v, want %s", labels, want)
	}
	if got.MinTCB != file.MinTCB || len(got.AllowedVMPL) != 2 || len(file.Measurements) != 2 {
		t.Fatal("min_tcb/allowed_vmpl not kept, or the file's set modified")
	}
	if err := got.Validate(); err != nil {
		t.Fatal(err)
	}
	if got := (*Set)(nil).WithOverlay(o); len(got.Measurements) != 3 || got.MinTCB != nil {
		t.Fatalf("no file: %+v", got)
	}
}
