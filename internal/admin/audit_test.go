package admin

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/refvalues"
)

// failingStore answers Put with store_unavailable: a write whose outcome
// the store did not confirm.
type failingStore struct{ MemoryStore }

func (*failingStore) Put(context.Context, string, refvalues.Record, Change) (int64, error) {
	return 0, attest.Errorf(attest.ReasonStoreUnavailable, "timeout")
}

// Every admin call is one audit line, refused ones (401, 404, 409, 400)
// and unconfirmed writes (outcome unknown) included; named tokens make
// the operator the who; the lines are chained.
func TestEveryCallAudited(t *testing.T) {
	t.Parallel()
	toks, err := ParseTokens([]byte("# operators\nalice:alice-token-0123456789\n\nbob: bob-token-0123456789abc\n"))
	if err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, &failingStore{}, nil, Options{Tokens: toks})
	calls := []struct {
		method, path, auth, body string
		want                     int
	}{
		{"GET", PathReferenceValues, "Bearer alice-token-0123456789", "", http.StatusOK},
		{"POST", PathMeasurements, "Bearer bob-token-0123456789abc", entry(valB, "b2"), http.StatusServiceUnavailable},
		{"DELETE", PathMeasurements + "/file-1", "Bearer wrong-token-0123456789", "", http.StatusUnauthorized},
		{"DELETE", PathMeasurements + "/nobody", "Bearer alice-token-0123456789", "", http.StatusNotFound},
		{"POST", PathMeasurements, "Bearer alice-token-0123456789", "not json", http.StatusBadRequest},
		{"GET", "/admin/v1/elsewhere", "Bearer alice-token-0123456789", "", http.StatusNotFound},
	}
	for _, c := range calls {
		if a := f.do(t, c.method, c.path, c.auth, c.body); a.code != c.want {
			t.Fatalf("%s %s: %d %s", c.method, c.path, a.code, a.body)
		}
	}
	var lines []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
		var m map[string]any
		dec := json.NewDecoder(strings.NewReader(l))
		dec.UseNumber() // numbers as written: the digest is over them
		if dec.Decode(&m) == nil && m["audit"] == "admin" {
			lines = append(lines, m)
		}
	}
	want := []struct{ who, action, label, outcome, reason string }{
		{"token:alice", "list", "", OutcomeAccepted, ""},
		{"token:bob", "approve", "b2", OutcomeUnknown, ReasonUnavailable},
		{"unauthenticated", "withdraw", "file-1", OutcomeRefused, ReasonUnauthorized},
		{"token:alice", "withdraw", "nobody", OutcomeRefused, ReasonNotFound},
		{"token:alice", "approve", "", OutcomeRefused, ReasonMalformedRequest},
		{"token:alice", "unknown_endpoint", "", OutcomeRefused, ReasonNotFound},
	}
	if len(lines) != len(want) {
		t.Fatalf("%d audit lines, want %d:\n%s", len(lines), len(want), f.logs.String())
	}
	prev := ""
	for i, w := range want {
		l := lines[i]
		if l["who"] != w.who || l["action"] != w.action || l["label"] != w.label || l["outcome"] != w.outcome || l["reason"] != w.reason {
			t.Errorf("line %d: %v, want %+v", i, l, w)
		}
		if l["audit_seq"] != json.Number(strconv.Itoa(i+1)) || l["audit_prev"] != prev {
			t.Errorf("line %d: audit_seq %v audit_prev %v, want %d %q", i, l["audit_seq"], l["audit_prev"], i+1, prev)
		}
		prev = AuditDigest(l)
	}
	if strings.Contains(f.logs.String(), "token-0123456789") {
		t.Fatal("a token in the log")
	}
}

// ParseTokens: one bare token, or NAME:TOKEN lines; short tokens,
// repeated names or tokens, and bad names are refused.
func TestParseTokens(t *testing.T) {
	t.Parallel()
	if toks, err := ParseTokens([]byte("  " + token + "\n")); err != nil || len(toks) != 1 || toks[0].Name != "" {
		t.Fatalf("bare token: %v %v", toks, err)
	}
	for _, bad := range []string{"", "short", "a:short", "a:" + token + "\na:" + token + "x", "a:" + token + "\nb:" + token, "a b:" + token, token + "\n" + token + "x"} {
		if _, err := ParseTokens([]byte(bad)); err == nil {
			t.Errorf("accepted %q", bad)
		}
	}
}

// signedWithout is a compact JWS of payload under key, typ as SignEntry
// makes (for approvals that lack iat or jti).
func signedWithout(t *testing.T, key *ecdsa.PrivateKey, payload string) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType(refvalues.EntrySigType))
	if err != nil {
		t.Fatal(err)
	}
	obj, err := s.Sign([]byte(payload))
	if err != nil {
		t.Fatal(err)
	}
	jws, _ := obj.CompactSerialize()
	return jws
}

// A jti is accepted once, ever (even when the withdrawal in between came
// before its iat); an approval signed before its label's last withdrawal
// is refused though never used; one without iat or jti is 400; a change
// under another trust key requirement than the layer's is 409.
func TestApprovalReplayRefused(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	store := &MemoryStore{}
	withdrawnAt := time.Now().Add(-time.Hour) // the server's clock, behind the signer's
	f := newFixture(t, store, &key.PublicKey, Options{Now: func() time.Time { return withdrawnAt }})
	auth := "Bearer " + token
	m := refvalues.Measurement{Value: valB, Label: "b2"}
	j, _ := refvalues.SignEntry(key, m, time.Now())
	older, _ := refvalues.SignEntry(key, m, withdrawnAt.Add(-time.Minute))
	if a := f.do(t, "POST", PathMeasurements, auth, j); a.code != http.StatusCreated {
		t.Fatalf("approve: %d %s", a.code, a.body)
	}
	if a := f.do(t, "DELETE", PathMeasurements+"/b2", auth, ""); a.code != http.StatusNoContent {
		t.Fatalf("withdraw: %d %s", a.code, a.body)
	}
	for name, jws := range map[string]string{"the same jti": j, "signed before the withdrawal": older} {
		if a := f.do(t, "POST", PathMeasurements, auth, jws); a.code != http.StatusConflict || a.reason != ReasonReplayed {
			t.Errorf("%s: %d %s", name, a.code, a.body)
		}
	}
	for name, payload := range map[string]string{
		"no jti": `{"value":"` + valB + `","label":"b2","iat":` + strconv.FormatInt(time.Now().Unix(), 10) + `}`,
		"no iat": `{"value":"` + valB + `","label":"b2","jti":"0123456789abcdef"}`,
	} {
		if a := f.do(t, "POST", PathMeasurements, auth, signedWithout(t, key, payload)); a.code != http.StatusBadRequest || a.reason != ReasonMalformedRequest {
			t.Errorf("%s: %d %s", name, a.code, a.body)
		}
	}
	if allows(t, f.engine, valB) != "" {
		t.Fatal("a replayed approval came into force")
	}
	// The layer records this replica's requirement; another one is refused.
	if _, err := store.Put(context.Background(), "x", refvalues.Record{}, Change{TrustKey: "none"}); !errors.Is(err, ErrTrustKey) {
		t.Fatalf("a change under another requirement: %v", err)
	}
}

// A replica whose trust key requirement is not the layer's withdraws
// every approval of the layer (it must not affirm what it cannot
// verify) and says why.
func TestLayerOfAnotherRequirementWithdrawn(t *testing.T) {
	t.Parallel()
	store := &MemoryStore{}
	if _, err := store.Put(context.Background(), "b2", refvalues.Record{Entry: &refvalues.Measurement{Value: valB, Label: "b2"}}, Change{TrustKey: "sha256:00"}); err != nil {
		t.Fatal(err)
	}
	f := newFixture(t, store, nil, Options{})
	var te *TrustError
	if allows(t, f.engine, valB) != "" || !errors.As(f.layer.LastError(), &te) {
		t.Fatalf("approval of a signed fleet at a replica without the key: %v", f.layer.LastError())
	}
}
