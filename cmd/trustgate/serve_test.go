package main

import (
	"strings"
	"testing"
)

// Bad settings stop serve before it listens, every problem listed at once.
func TestServeRefusesBadConfig(t *testing.T) {
	t.Parallel()
	code, _, errOut := runCLI("serve", "--listen", "0.0.0.0:0", "--dev-simulator", "--nonce-ttl", "1s", "--policy", "/nonexistent.rego")
	if code != exitUsage {
		t.Fatalf("exit %d, want %d\n%s", code, exitUsage, errOut)
	}
	for _, want := range []string{"dev_simulator is refused unless listen is a loopback address", "nonce_ttl", "policy"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if code, _, errOut := runCLI("serve", "--nonce-ttl", "soon"); code != exitUsage || !strings.Contains(errOut, "--nonce-ttl") {
		t.Fatalf("bad duration: exit %d\n%s", code, errOut)
	}
}
