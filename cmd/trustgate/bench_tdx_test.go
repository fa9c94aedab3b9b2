package main

import (
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/app/apptest"
)

// bench --tee tdx loads the verifier with simulated TDX quotes: every one
// affirmed (the verifier's TDX reference value), an unapproved MRTD
// stopping the run with its reason, an unknown TEE a usage error.
func TestBenchTDX(t *testing.T) {
	t.Parallel()
	url := apptest.Start(t, apptest.SimVerifier(t, nil))
	code, out, errOut := runCLI("bench", "--verifier", url, "--tee", "tdx", "-n", "20", "-c", "2")
	if code != exitOK || !strings.Contains(out, "affirmed     20, refused 0, unavailable 0") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI("bench", "--verifier", url, "--tee", "tdx", "-n", "4", "-c", "2", "--sim-measurement", strings.Repeat("11", 48))
	if code != exitRejected || out != "" || !strings.Contains(errOut, "refuses the simulated guest (measurement_mismatch)") {
		t.Fatalf("unapproved MRTD: exit %d\n%s%s", code, out, errOut)
	}
	if code, _, _ := runCLI("bench", "--verifier", url, "--tee", "cca"); code != exitUsage {
		t.Errorf("--tee cca: exit %d", code)
	}
}
