package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The simulated Nitro enclave runs the whole flow through the real agent:
// challenge, a document whose nonce binds the nonce and the ephemeral key,
// attest (the verifier's simulated AWS-like root, the nitro reference
// value), token, release; --tee nitro without an NSM is unavailable.
func TestAgentAttestSimulatedNitro(t *testing.T) {
	t.Parallel()
	url := startVerifier(t)
	out := filepath.Join(t.TempDir(), "secrets")
	code, stdout, stderr := runAgent("attest", "--verifier", url, "--tee", "nitro", "--simulate", "--resource", "db-password", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(out, "db-password")); err != nil || string(b) != dbPassword {
		t.Fatalf("db-password: %q, %v", b, err)
	}
	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"attest", "--verifier", url, "--tee", "nitro", "--simulate"}, exitOK, "AFFIRMING"},
		{[]string{"attest", "--verifier", url, "--tee", "nitro", "--simulate", "--sim-measurement", strings.Repeat("11", 48)}, exitRejected, "REJECTED: measurement_mismatch"},
		{[]string{"attest", "--verifier", url, "--tee", "nitro", "--vmpl", "1"}, exitUsage, ""},
		{[]string{"attest", "--verifier", url, "--tee", "nitro", "--device", "sev-guest"}, exitUsage, ""},
	} {
		code, out, errOut := runAgent(c.args...)
		if code != c.code || !strings.HasPrefix(out, c.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, %q", c.args, code, out, errOut, c.code, c.want)
		}
	}
	if _, err := os.Stat("/dev/nsm"); err != nil {
		if code, out, errOut := runAgent("attest", "--verifier", url, "--tee", "nitro"); code != exitUnavailable {
			t.Errorf("--tee nitro without /dev/nsm: exit %d %s%s", code, out, errOut)
		}
	}
}
