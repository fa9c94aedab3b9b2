package main

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/app/apptest"
)

const dbPassword = "correct horse battery staple"

// startVerifier serves a --dev-simulator verifier on loopback that
// approves the simulator's default build and grants it db-password and
// config.json; other-secret is stored but granted to nobody.
func startVerifier(t *testing.T) string {
	res := map[string]string{"db-password": dbPassword, "config.json": `{"log":"debug"}`, "other-secret": "no"}
	return apptest.Start(t, apptest.SimVerifier(t, res, "db-password", "config.json"))
}

func runAgent(args ...string) (code int, stdout, stderr string) {
	var out, errOut bytes.Buffer
	code = run(args, &out, &errOut)
	return code, out.String(), errOut.String()
}

func TestAgentAttestSimulated(t *testing.T) {
	t.Parallel()
	url := startVerifier(t)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"attest", "--verifier", url, "--simulate"}, exitOK, "AFFIRMING\ntoken: ey"},
		{[]string{"attest", "--verifier", url, "--simulate", "--sim-measurement", strings.Repeat("11", 48)}, exitRejected, "REJECTED: measurement_mismatch"},
		{[]string{"attest", "--verifier", url, "--simulate", "--sim-measurement", "abc"}, exitUsage, ""},
		{[]string{"attest", "--verifier", url, "--sim-measurement", strings.Repeat("11", 48)}, exitUsage, ""},
		{[]string{"attest", "--verifier", url, "--simulate", "--resource", "db-password"}, exitUsage, ""},
		{[]string{"attest", "--verifier", url, "--simulate", "--resource", "../x", "--out", filepath.Join(t.TempDir(), "out")}, exitUsage, ""},
		{[]string{"attest", "--verifier", url, "--device", "tpm"}, exitUsage, ""},
		{[]string{"attest", "--verifier", url, "--vmpl", "4"}, exitUsage, ""},
		{[]string{"attest", "--verifier", url, "--simulate", "--vmpl", "1"}, exitUsage, ""},
		{[]string{"attest", "--simulate"}, exitUsage, ""},
		{[]string{"run", "--verifier", url, "--simulate", "--out", filepath.Join(t.TempDir(), "out")}, exitUsage, ""},
		{[]string{"attest", "--verifier", url, "--simulate", "--resource", "other-secret", "--out", filepath.Join(t.TempDir(), "out")}, exitRejected, "REJECTED: resource_forbidden"},
		{[]string{"attest", "--verifier", "http://127.0.0.1:1", "--simulate", "--attempts", "2"}, exitUnavailable, ""},
	}
	if _, err := os.Stat("/dev/sev-guest"); err != nil {
		// Not an SEV-SNP guest: the real device is unavailable, exit 3.
		cases = append(cases, struct {
			args []string
			code int
			want string
		}{[]string{"attest", "--verifier", url}, exitUnavailable, ""})
	}
	for _, c := range cases {
		code, out, errOut := runAgent(c.args...)
		if code != c.code || !strings.HasPrefix(out, c.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, %q", c.args, code, out, errOut, c.code, c.want)
		}
	}
}

// attest --resource --out: each resource lands in DIR/NAME, mode 0600, in
// a directory of mode 0700, and nothing secret is printed.
func TestAgentWritesResources(t *testing.T) {
	t.Parallel()
	url := startVerifier(t)
	out := filepath.Join(t.TempDir(), "secrets")
	code, stdout, stderr := runAgent("attest", "--verifier", url, "--simulate", "--resource", "db-password", "--resource", "config.json", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if strings.Contains(stdout+stderr, dbPassword) || strings.Contains(stdout, "token:") {
		t.Errorf("a secret or the token was printed:\n%s%s", stdout, stderr)
	}
	st, err := os.Stat(out)
	if err != nil || st.Mode().Perm() != 0o700 {
		t.Fatalf("out dir: %v, %v", st, err)
	}
	for name, want := range map[string]string{"db-password": dbPassword, "config.json": `{"log":"debug"}`} {
		p := filepath.Join(out, name)
		b, err := os.ReadFile(p)
		st, _ := os.Stat(p)
		if err != nil || string(b) != want || st.Mode().Perm() != 0o600 {
			t.Errorf("%s: %q, %v, mode %v", name, b, err, st.Mode())
		}
	}
	entries, _ := os.ReadDir(out)
	if len(entries) != 2 {
		t.Errorf("out holds %d entries, want the 2 resources (no temporary files)", len(entries))
	}
	// An existing directory open to others is refused, not written into,
	// before anything is attested (exit 2: the command line's --out).
	open := t.TempDir()
	os.Chmod(open, 0o755)
	if code, _, _ := runAgent("attest", "--verifier", url, "--simulate", "--resource", "db-password", "--out", open); code != exitUsage {
		t.Errorf("out dir of mode 0755: exit %d", code)
	}
	if _, err := os.Stat(filepath.Join(open, "db-password")); err == nil {
		t.Error("a secret was written into a directory open to others")
	}
}

// run execs the workload once the resources are in place: the built
// binary is run, so that exec replaces it as in production.
func TestAgentRunExecs(t *testing.T) {
	t.Parallel()
	url := startVerifier(t)
	dir := t.TempDir()
	bin := filepath.Join(dir, "trustgate-agent")
	if out, err := exec.Command("go", "build", "-o", bin, ".").CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out, marker := filepath.Join(dir, "secrets"), filepath.Join(dir, "marker")
	cmd := exec.Command(bin, "run", "--verifier", url, "--simulate", "--resource", "db-password", "--out", out, "--",
		"sh", "-c", `cat "$TRUSTGATE_RESOURCES_DIR/db-password" > "$1"; echo "workload pid $$"`, "sh", marker)
	got, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("run: %v\n%s", err, got)
	}
	b, err := os.ReadFile(marker)
	if err != nil || string(b) != dbPassword {
		t.Fatalf("the workload read %q (%v); output:\n%s", b, err, got)
	}
	// exec, not a child: the workload has the agent's pid.
	if want := fmt.Sprintf("workload pid %d", cmd.Process.Pid); !strings.Contains(string(got), want) {
		t.Errorf("output lacks %q:\n%s", want, got)
	}
	// A command that does not exist is a usage error before anything is
	// attested or written.
	code, _, _ := runAgent("run", "--verifier", url, "--simulate", "--out", filepath.Join(dir, "none"), "--", "/nonexistent/workload")
	if _, err := os.Stat(filepath.Join(dir, "none")); code != exitUsage || err == nil {
		t.Errorf("missing workload: exit %d, out dir created: %v", code, err == nil)
	}
}

// The agent follows the CLI's conventions: --help on stdout with exit 0,
// a wrong flag in two lines with the closest flag, --version.
func TestAgentCLIConventions(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{{"--help"}, {"attest", "--help"}, {"run", "-h"}} {
		code, out, errOut := runAgent(args...)
		if code != exitOK || !strings.Contains(out, "usage: trustgate-agent") || errOut != "" {
			t.Errorf("%q: exit %d, stdout %d bytes, stderr %q", args, code, len(out), errOut)
		}
	}
	if code, out, _ := runAgent("--version"); code != exitOK || !strings.HasPrefix(out, "trustgate-agent ") {
		t.Errorf("--version: exit %d, %q", code, out)
	}
	code, out, errOut := runAgent("attest", "--verifer", "http://127.0.0.1:1")
	if want := "trustgate-agent attest: unknown flag --verifer (did you mean --verifier?)\nRun 'trustgate-agent attest --help' for usage.\n"; code != exitUsage || out != "" || errOut != want {
		t.Errorf("wrong flag: exit %d, stdout %q, stderr %q", code, out, errOut)
	}
}
