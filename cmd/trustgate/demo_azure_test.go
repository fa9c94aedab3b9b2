package main

import (
	"strings"
	"testing"
)

// demo --tee azure-snp|azure-tdx runs the flow with a simulated Azure VM:
// the HCL report and vTPM quote are affirmed by the pinned PCRs (the token's
// label is the Azure entry's), the secret is released, and a VM with
// another PCR4 is refused.
func TestDemoAzure(t *testing.T) {
	t.Parallel()
	for _, tee := range []string{"azure-snp", "azure-tdx"} {
		code, out, errOut := runCLI("demo", "--tee", tee)
		if code != exitOK {
			t.Fatalf("demo --tee %s: exit %d\n%s\n%s", tee, code, out, errOut)
		}
		for _, want := range []string{"HCL report", `tee "` + tee + `"`, "affirming", "label=demo-az-1", "db-password, 25 bytes",
			"REJECTED: token_replayed", "REJECTED: nonce_replayed", "PCR4 differs", "REJECTED: measurement_mismatch"} {
			if !strings.Contains(out, want) {
				t.Errorf("demo --tee %s output lacks %q:\n%s", tee, want, out)
			}
		}
	}
}
