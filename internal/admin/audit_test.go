package admin

import (
	"context"
	"encoding/json"
	"net/http"
	"strconv"
	"strings"
	"testing"

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
