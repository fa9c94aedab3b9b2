package main

import (
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/app/apptest"
)

// bench --tee nitro loads the verifier with simulated Nitro documents:
// every one affirmed (the verifier's nitro reference value), an unapproved
// PCR0 refused with its reason.
func TestBenchNitro(t *testing.T) {
	t.Parallel()
	url := apptest.Start(t, apptest.SimVerifier(t, nil))
	code, out, errOut := runCLI("bench", "--verifier", url, "--tee", "nitro", "-n", "20", "-c", "2")
	if code != exitOK || !strings.Contains(out, "affirmed     20, refused 0, unavailable 0") {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	code, out, errOut = runCLI("bench", "--verifier", url, "--tee", "nitro", "-n", "4", "-c", "2", "--sim-measurement", strings.Repeat("11", 48))
	if code != exitRejected || out != "" || !strings.Contains(errOut, "refuses the simulated guest (measurement_mismatch)") {
		t.Fatalf("unapproved PCR0: exit %d\n%s%s", code, out, errOut)
	}
}
