package main

import (
	"bytes"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/admin"
	"github.com/trustgate/trustgate/internal/state"
)

// `trustgate audit verify` takes a log of slog JSON lines mixed with
// others: the chain of a replica's audit lines holds (across a restart
// that kept the state directory); a line taken out, edited or moved is
// exit 1; an unreadable file exit 2.
func TestAuditVerify(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	mem, err := state.OpenDir(filepath.Join(dir, "state"))
	if err != nil {
		t.Fatal(err)
	}
	var log bytes.Buffer
	l := slog.New(slog.NewJSONHandler(&log, nil))
	a := admin.NewAuditor(l, mem, nil)
	a.Record("token:alice", "approve", "b1", admin.OutcomeAccepted, "", "admin_version", int64(1))
	l.Info("policy reloaded", "appraisal_policy_id", "sha256:00")
	log.WriteString("plain text from somewhere else\n")
	a.Record("unauthenticated", "withdraw", "b1", admin.OutcomeRefused, "unauthorized_client")
	// A restart with the same state directory goes on with the chain.
	a = admin.NewAuditor(l, mem, nil)
	a.Record("token:bob", "withdraw", "b1", admin.OutcomeUnknown, "store_unavailable")
	a.Record("token:bob", "list", "", admin.OutcomeAccepted, "")
	lines := strings.SplitAfter(log.String(), "\n")
	write := func(name string, ls []string) string {
		p := filepath.Join(dir, name)
		os.WriteFile(p, []byte(strings.Join(ls, "")), 0o600)
		return p
	}
	run1 := func(path string) (int, string) {
		var out, errb bytes.Buffer
		code := run([]string{"audit", "verify", path}, &out, &errb)
		return code, out.String() + errb.String()
	}
	if code, out := run1(write("good.log", lines)); code != exitOK || !strings.Contains(out, "4 audit lines, the chain holds") {
		t.Fatalf("intact log: %d %s", code, out)
	}
	audit := []int{}
	for i, ln := range lines {
		if strings.Contains(ln, `"audit":"admin"`) {
			audit = append(audit, i)
		}
	}
	without := func(i int) []string { return append(append([]string{}, lines[:i]...), lines[i+1:]...) }
	edited := append([]string{}, lines...)
	edited[audit[1]] = strings.Replace(edited[audit[1]], `"outcome":"refused"`, `"outcome":"accepted"`, 1)
	moved := append([]string{}, lines...)
	moved[audit[2]], moved[audit[3]] = moved[audit[3]], moved[audit[2]]
	for name, ls := range map[string][]string{"a line taken out": without(audit[2]), "a line edited": edited, "two lines swapped": moved} {
		if code, out := run1(write(strings.ReplaceAll(name, " ", "_")+".log", ls)); code != exitRejected || !strings.Contains(out, "BROKEN") {
			t.Errorf("%s: %d %s", name, code, out)
		}
	}
	// The first line out of the file: the chain is taken up, not broken.
	if code, out := run1(write("tail.log", without(audit[0]))); code != exitOK || !strings.Contains(out, "taken up") {
		t.Errorf("a log's tail: %d %s", code, out)
	}
	if code, _ := run1(filepath.Join(dir, "none.log")); code != exitUsage {
		t.Errorf("missing file: %d", code)
	}
	if code := run([]string{"audit"}, &bytes.Buffer{}, &bytes.Buffer{}); code != exitUsage {
		t.Errorf("no subcommand: %d", code)
	}
}
