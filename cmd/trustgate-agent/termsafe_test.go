package main

import (
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
)

// What the verifier answers reaches the terminal escaped (issue 21, item
// 14): a verifier (or whoever answers in its place) cannot drive the
// operator's terminal with escape sequences in a reason or message.
func TestAgentEscapesTheVerifiersWords(t *testing.T) {
	t.Parallel()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		w.Write([]byte(`{"error":"\u001b]0;owned\u0007 \u009b31m red \u001b[2J","reason":"policy_x\u001b[8m"}`))
	}))
	defer srv.Close()
	code, out, errOut := runAgent("attest", "--verifier", srv.URL, "--simulate", "--attempts", "1")
	if code == exitOK {
		t.Fatalf("exit 0\n%s%s", out, errOut)
	}
	all := out + errOut
	for _, c := range []string{"\x1b", "\x07", "\u009b"} {
		if strings.Contains(all, c) {
			t.Fatalf("a control character %q reached the terminal:\n%q", c, all)
		}
	}
	if !strings.Contains(all, `\x1b`) {
		t.Fatalf("the escape sequence is not shown escaped:\n%q", all)
	}
}

func TestTermSafe(t *testing.T) {
	t.Parallel()
	var b strings.Builder
	termSafe{&b}.Write([]byte("ok\tlines\n→ é \x1b[31m \x00 \xff \u009b \u2028"))
	if got, want := b.String(), "ok\tlines\n→ é \\x1b[31m \\x00 \\xff \\x9b \\u2028"; got != want {
		t.Fatalf("%q, want %q", got, want)
	}
}

// --out is judged before the verifier is asked anything (issue 21, item
// 16): a release is consumed once, so a destination refused after it
// would lose it.
func TestAgentChecksOutFirst(t *testing.T) {
	t.Parallel()
	var asked atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		asked.Add(1)
		w.WriteHeader(http.StatusServiceUnavailable)
	}))
	defer srv.Close()
	open := filepath.Join(t.TempDir(), "open")
	if err := os.Mkdir(open, 0o755); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := runAgent("attest", "--verifier", srv.URL, "--simulate", "--resource", "db-password", "--out", open, "--attempts", "1")
	if code != exitUsage || asked.Load() != 0 {
		t.Fatalf("exit %d after %d requests to the verifier\n%s%s", code, asked.Load(), out, errOut)
	}
}
