package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A simulated Azure VM runs the whole flow through the real agent:
// challenge, the HCL report and vTPM quote binding the nonce and the
// ephemeral key, attest (the verifier's azure-snp / azure-tdx entries pin
// the simulator's PCR4), token, release; an unapproved measurement is
// refused; without --simulate a missing vTPM is exit 3, --vmpl a usage
// error.
func TestAgentAttestSimulatedAzure(t *testing.T) {
	t.Parallel()
	url := startVerifier(t)
	for _, tee := range []string{"azure-snp", "azure-tdx"} {
		out := filepath.Join(t.TempDir(), "secrets")
		code, stdout, stderr := runAgent("attest", "--verifier", url, "--tee", tee, "--simulate", "--resource", "db-password", "--out", out)
		if code != exitOK {
			t.Fatalf("%s: exit %d\n%s%s", tee, code, stdout, stderr)
		}
		if b, err := os.ReadFile(filepath.Join(out, "db-password")); err != nil || string(b) != dbPassword {
			t.Fatalf("%s: db-password: %q, %v", tee, b, err)
		}
		code, stdout, _ = runAgent("attest", "--verifier", url, "--tee", tee, "--simulate", "--sim-measurement", strings.Repeat("11", 48))
		if code != exitRejected || !strings.Contains(stdout, "REJECTED: measurement_mismatch") {
			t.Errorf("%s, unapproved measurement: exit %d\n%s", tee, code, stdout)
		}
		missing := filepath.Join(t.TempDir(), "no-tpm")
		if code, _, stderr := runAgent("attest", "--verifier", url, "--tee", tee, "--tpm", missing); code != exitUnavailable || !strings.Contains(stderr, "vTPM "+missing) {
			t.Errorf("%s without a vTPM: exit %d\n%s", tee, code, stderr)
		}
		if code, _, stderr := runAgent("attest", "--verifier", url, "--tee", tee, "--vmpl", "1"); code != exitUsage || !strings.Contains(stderr, "--vmpl") {
			t.Errorf("%s with --vmpl: exit %d\n%s", tee, code, stderr)
		}
	}
}
