package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// The simulated TD runs the whole flow through the real agent: challenge,
// a TDX quote binding the nonce and the ephemeral key, attest (the
// verifier's simulated Intel root and collateral, TCB UpToDate, the TDX
// reference value), token, release.
func TestAgentAttestSimulatedTDX(t *testing.T) {
	t.Parallel()
	url := startVerifier(t)
	out := filepath.Join(t.TempDir(), "secrets")
	code, stdout, stderr := runAgent("attest", "--verifier", url, "--tee", "tdx", "--simulate", "--resource", "db-password", "--out", out)
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	if b, err := os.ReadFile(filepath.Join(out, "db-password")); err != nil || string(b) != dbPassword {
		t.Fatalf("db-password: %q, %v", b, err)
	}
	// The token names the TEE and is marked as the simulator's.
	code, stdout, stderr = runAgent("attest", "--verifier", url, "--tee", "tdx", "--simulate")
	if code != exitOK || !strings.HasPrefix(stdout, "AFFIRMING\ntoken: ey") {
		t.Fatalf("exit %d\n%s%s", code, stdout, stderr)
	}
	tok := strings.TrimSpace(strings.TrimPrefix(stdout, "AFFIRMING\ntoken: "))
	payload, err := base64.RawURLEncoding.DecodeString(strings.Split(tok, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims map[string]any
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	sub, _ := claims["submods"].(map[string]any)
	if _, ok := sub["tdx"]; !ok || !strings.Contains(string(payload), "simulat") {
		t.Errorf("token payload lacks the tdx submodule or the simulator mark: %s", payload)
	}

	for _, c := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"attest", "--verifier", url, "--tee", "tdx", "--simulate", "--sim-measurement", strings.Repeat("11", 48)}, exitRejected, "REJECTED: measurement_mismatch"},
		{[]string{"attest", "--verifier", url, "--tee", "tdx", "--simulate", "--resource", "other-secret", "--out", filepath.Join(t.TempDir(), "out")}, exitRejected, "REJECTED: resource_forbidden"},
		{[]string{"attest", "--verifier", url, "--tee", "cca", "--simulate"}, exitUsage, ""},
		{[]string{"attest", "--verifier", url, "--tee", "tdx", "--vmpl", "1"}, exitUsage, ""},
		{[]string{"attest", "--verifier", url, "--tee", "tdx", "--device", "sev-guest"}, exitUsage, ""},
		{[]string{"attest", "--verifier", url, "--tee", "sev-snp", "--simulate"}, exitOK, "AFFIRMING"},
		{[]string{"attest", "--verifier", url, "--tee", "auto", "--simulate"}, exitOK, "AFFIRMING"},
	} {
		code, out, errOut := runAgent(c.args...)
		if code != c.code || !strings.HasPrefix(out, c.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, %q", c.args, code, out, errOut, c.code, c.want)
		}
	}
	if _, err := os.Stat("/sys/kernel/config/tsm/report"); err != nil {
		// Not a TD: the real device is unavailable, exit 3.
		if code, out, errOut := runAgent("attest", "--verifier", url, "--tee", "tdx"); code != exitUnavailable {
			t.Errorf("--tee tdx without configfs-tsm: exit %d %s%s", code, out, errOut)
		}
	}
}
