package main

import (
	"reflect"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/config"
)

// Every config key is also a serve flag (SPEC: "every flag is also a
// config key"), and every flag a key.
func TestServeFlagsCoverConfig(t *testing.T) {
	t.Parallel()
	flags := map[string]bool{}
	for _, f := range serveFlags {
		flags[strings.ReplaceAll(f.name, "-", "_")] = true
	}
	rt := reflect.TypeFor[config.Config]()
	for i := range rt.NumField() {
		key := rt.Field(i).Tag.Get("yaml")
		if !flags[key] {
			t.Errorf("config key %s has no serve flag", key)
		}
		delete(flags, key)
	}
	for f := range flags {
		t.Errorf("serve flag for %s has no config key", f)
	}
}

// Bad settings stop serve before it listens, every problem listed at once.
func TestServeRefusesBadConfig(t *testing.T) {
	t.Parallel()
	code, _, errOut := runCLI("serve", "--listen", "0.0.0.0:0", "--dev-simulator", "--nonce-ttl", "1s", "--policy", "/nonexistent.rego",
		"--redis", "http://user:hunter2@example.invalid", "--warm-chips", "/nonexistent.txt", "--kds-rate", "0s")
	if code != exitUsage {
		t.Fatalf("exit %d, want %d\n%s", code, exitUsage, errOut)
	}
	if strings.Contains(errOut, "hunter2") {
		t.Errorf("a Redis password is echoed:\n%s", errOut)
	}
	for _, want := range []string{"dev_simulator is refused unless listen is a loopback address", "nonce_ttl", "policy", "redis:", "warm_chips", "kds_rate"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	if code, _, errOut := runCLI("serve", "--nonce-ttl", "soon"); code != exitUsage || !strings.Contains(errOut, "--nonce-ttl") {
		t.Fatalf("bad duration: exit %d\n%s", code, errOut)
	}
}
