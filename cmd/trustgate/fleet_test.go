package main

import (
	"bytes"
	"context"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/admin"
	"github.com/trustgate/trustgate/internal/launch"
	"github.com/trustgate/trustgate/internal/policy"
)

// `trustgate fleet lookup` computes the pseudonym the verifier keeps for a
// REPORT_ID from the launch key, and fetches that launch's record from the
// admin API; exit codes say found (0), no record (1), usage (2), admin API
// down (3).
func TestFleetLookup(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "launch.key")
	key, _, err := launch.LoadOrCreateKey(keyFile)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := launch.NewKeyer(key)
	rid := strings.Repeat("ab", 32)
	ridBytes := bytes.Repeat([]byte{0xab}, 32)
	p := k.Launch("sev-snp", ridBytes)

	st := launch.NewMemoryStore(0, nil)
	now := time.Now()
	st.Commit(context.Background(), p, "sev-snp", k.Chip("sev-snp", []byte("chip")), 0, now, time.Hour)
	st.Commit(context.Background(), p, "sev-snp", k.Chip("sev-snp", []byte("chip")), 1, now, time.Hour)
	e, err := policy.New(context.Background(), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	layer, _ := admin.NewLayer(admin.LayerOptions{Store: &admin.MemoryStore{}, Engine: e})
	layer.Sync(context.Background())
	const tok = "fleet-admin-token-0123456789"
	srv := httptest.NewServer(admin.NewHandler(admin.Options{Layer: layer, Tokens: []admin.Token{{Secret: []byte(tok)}}, Launches: st}))
	defer srv.Close()
	tokFile, badTokFile := filepath.Join(dir, "admin.token"), filepath.Join(dir, "bad.token")
	os.WriteFile(tokFile, []byte(tok+"\n"), 0o600)
	os.WriteFile(badTokFile, []byte("not-the-admin-token-at-all\n"), 0o600)
	openKey := filepath.Join(dir, "open.key")
	os.WriteFile(openKey, []byte(strings.Repeat("cd", 32)), 0o644)
	down := httptest.NewServer(nil)
	downURL := down.URL
	down.Close()

	for _, tc := range []struct {
		name string
		args []string
		code int
		out  string
	}{
		{"pseudonym only", []string{"--report-id", rid, "--launch-key-file", keyFile}, exitOK, "launch " + p.String() + "\n"},
		{"record", []string{"--report-id", rid, "--launch-key-file", keyFile, "--admin", srv.URL, "--admin-token-file", tokFile}, exitOK, "seq        2\n"},
		{"no record", []string{"--report-id", strings.Repeat("cd", 32), "--launch-key-file", keyFile, "--admin", srv.URL, "--admin-token-file", tokFile}, exitRejected, ""},
		{"wrong admin token", []string{"--report-id", rid, "--launch-key-file", keyFile, "--admin", srv.URL, "--admin-token-file", badTokFile}, exitUsage, ""},
		{"admin down", []string{"--report-id", rid, "--launch-key-file", keyFile, "--admin", downURL, "--admin-token-file", tokFile}, exitUnavailable, ""},
		{"no key", []string{"--report-id", rid}, exitUsage, ""},
		{"key open to others", []string{"--report-id", rid, "--launch-key-file", openKey}, exitUsage, ""},
		{"two identities", []string{"--report-id", rid, "--td-id", strings.Repeat("00", 192), "--launch-key-file", keyFile}, exitUsage, ""},
		{"short report id", []string{"--report-id", "abcd", "--launch-key-file", keyFile}, exitUsage, ""},
		{"admin without token", []string{"--report-id", rid, "--launch-key-file", keyFile, "--admin", srv.URL}, exitUsage, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(append([]string{"fleet", "lookup"}, tc.args...), &out, &errb)
			if code != tc.code || !strings.Contains(out.String(), tc.out) {
				t.Fatalf("exit %d, want %d; stdout %q stderr %q", code, tc.code, out.String(), errb.String())
			}
			if strings.Contains(out.String()+errb.String(), rid) {
				t.Fatal("the REPORT_ID was printed")
			}
		})
	}
}
