package main

import (
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/app/apptest"
)

// bench --tee azure-snp loads the verifier with simulated Azure VMs: every
// one affirmed (the verifier's azure-snp entry pins the simulator's PCR4),
// an unapproved measurement refused with its reason, and the server cpu
// line gains the ratio against an ECDSA P-384 plus an RSA-2048
// verification.
func TestBenchAzure(t *testing.T) {
	t.Parallel()
	url := apptest.Start(t, apptest.SimVerifier(t, nil))
	code, out, errOut := runCLI("bench", "--verifier", url, "--tee", "azure-snp", "-n", "20", "-c", "2")
	if code != exitOK || !strings.Contains(out, "affirmed     20, refused 0, unavailable 0") ||
		!strings.Contains(out, "against one bare ECDSA P-384 plus one RSA-2048 verification") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	// An unapproved MRTD stops the run before anything is measured.
	code, out, errOut = runCLI("bench", "--verifier", url, "--tee", "azure-tdx", "-n", "4", "-c", "2", "--sim-measurement", strings.Repeat("11", 48))
	if code != exitRejected || out != "" || !strings.Contains(errOut, "refuses the simulated guest (measurement_mismatch)") {
		t.Fatalf("unapproved MRTD: exit %d\n%s%s", code, out, errOut)
	}
}
