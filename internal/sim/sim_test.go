package sim_test

import (
	"context"
	"os/exec"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/tee/snp"
)

// A simulated report verifies, with every check of real hardware, under a
// verifier that trusts the simulator's ARK key, and under AMD's roots alone
// it does not.
func TestSimulatedReportVerifiesOnlyUnderItsARKKey(t *testing.T) {
	t.Parallel()
	dev, err := sim.New(sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var rd [64]byte
	rd[0] = 7
	report, table := dev.Report(rd)
	ev := snp.Evidence{Report: report, CertTable: table}
	claims, err := snp.New(snp.Options{Roots: snp.AMDRoots().WithARKKey(sim.ARKKey())}).Verify(context.Background(), ev)
	if err != nil {
		t.Fatalf("under the simulator's ARK key: %v", err)
	}
	if err := claims.Expect(sim.DefaultMeasurement[:], rd[:]); err != nil {
		t.Fatal(err)
	}
	_, err = snp.New(snp.Options{}).Verify(context.Background(), ev)
	if got := attest.ReasonOf(err); got != attest.ReasonCertChainInvalid {
		t.Fatalf("under AMD's roots: %q (%v), want cert_chain_invalid", got, err)
	}
}

// The programs link no test scaffolding: not Go's testing package, not
// net/http/httptest, not the test kit (issue 12: the simulator belongs in
// the product, the test kit does not).
func TestBinariesHoldNoTestScaffolding(t *testing.T) {
	t.Parallel()
	for _, cmd := range []string{"github.com/trustgate/trustgate/cmd/trustgate", "github.com/trustgate/trustgate/cmd/trustgate-agent"} {
		out, err := exec.Command("go", "list", "-deps", cmd).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", cmd, err, out)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == "testing" || dep == "net/http/httptest" || strings.HasSuffix(dep, "/internal/testkit") {
				t.Errorf("%s links %s", cmd, dep)
			}
		}
	}
}
