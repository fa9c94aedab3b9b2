package main

import (
	"strings"
	"testing"
)

// The README's first command works and shows each step, including the two
// refusals.
func TestDemo(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCLI("demo")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"[1] Verifier listening", "[5]", "affirming", "POST /v1/release", "equal to the verifier's file", "REJECTED: token_replayed", "REJECTED: nonce_replayed", "REJECTED: measurement_mismatch", "All steps held"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo output lacks %q:\n%s", want, out)
		}
	}
}
