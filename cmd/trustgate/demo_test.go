package main

import (
	"os"
	"path/filepath"
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

// demo --tee tdx runs the same flow with the TDX simulator: the quote
// verifies under the simulator's root with its collateral, the token names
// the tdx submodule (its label is the TDX entry's), and the three refusals
// hold.
func TestDemoTDX(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCLI("demo", "--tee", "tdx")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"[1] Verifier listening", "TDX simulator", "version 4 quote", `tee "tdx"`, "affirming", "label=demo-td-1",
		"equal to the verifier's file", "REJECTED: token_replayed", "REJECTED: nonce_replayed", "REJECTED: measurement_mismatch", "All steps held"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo --tee tdx output lacks %q:\n%s", want, out)
		}
	}
	for _, args := range [][]string{{"demo", "--tee", "cca"}, {"demo", "extra"}} {
		if code, _, _ := runCLI(args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}

// demo --tee nitro runs the same flow with the Nitro simulator: the
// document verifies under the simulator's root, the policy holds PCR0 and
// the PCR1 pin, the token names the nitro submodule, and the three
// refusals hold.
func TestDemoNitro(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCLI("demo", "--tee", "nitro")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	for _, want := range []string{"[1] Verifier listening", "AWS Nitro Enclaves Root-G1", "attestation document (COSE_Sign1, ES384)", `tee "nitro"`, "affirming",
		"label=demo-enclave-1", "equal to the verifier's file", "REJECTED: token_replayed", "REJECTED: nonce_replayed", "REJECTED: measurement_mismatch", "All steps held"} {
		if !strings.Contains(out, want) {
			t.Errorf("demo --tee nitro output lacks %q:\n%s", want, out)
		}
	}
}

// Without a temporary directory (the FROM scratch image has no /tmp) the
// demo works under the user cache directory and leaves nothing there.
func TestDemoWithoutTempDir(t *testing.T) {
	cache := t.TempDir()
	t.Setenv("TMPDIR", filepath.Join(cache, "no-such-dir"))
	t.Setenv("XDG_CACHE_HOME", cache)
	if _, err := os.MkdirTemp("", "x"); err == nil {
		t.Fatal("TMPDIR still usable: the test would not test the fallback")
	}
	code, out, errOut := runCLI("demo")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	left, err := os.ReadDir(filepath.Join(cache, "trustgate"))
	if err != nil {
		t.Fatalf("the demo did not work under the cache directory: %v", err)
	}
	if len(left) != 0 {
		t.Errorf("the demo left %d entries in %s/trustgate", len(left), cache)
	}
}
