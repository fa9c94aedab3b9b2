package deploy

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/config"
)

// The unit carries the hardening it promises, its ExecStart flags and its
// config file are settings `trustgate serve` knows, the stop timeout
// covers shutdown_delay + shutdown_timeout, and, where systemd-analyze is
// installed, `systemd-analyze verify` says nothing and `systemd-analyze
// security` rates it OK (exposure below 2.0).
func TestSystemdUnit(t *testing.T) {
	t.Parallel()
	unit, err := os.ReadFile(filepath.Join("systemd", "trustgate.service"))
	if err != nil {
		t.Fatal(err)
	}
	// Continuation lines joined; key=value of [Service].
	text := strings.ReplaceAll(string(unit), "\\\n", " ")
	keys := map[string][]string{}
	for _, line := range strings.Split(text, "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(line, "#") {
			keys[k] = append(keys[k], v)
		}
	}
	for k, want := range map[string]string{
		"NoNewPrivileges": "yes", "CapabilityBoundingSet": "", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "PrivateDevices": "yes", "RestrictAddressFamilies": "AF_INET AF_INET6 AF_UNIX",
		"SystemCallFilter": "@system-service", "CacheDirectory": "trustgate", "User": "trustgate", "MemoryDenyWriteExecute": "yes",
	} {
		if len(keys[k]) == 0 || keys[k][0] != want {
			t.Errorf("%s=%q, want %q", k, keys[k], want)
		}
	}
	if len(keys["LoadCredential"]) != 4 {
		t.Errorf("LoadCredential %q: want the nonce, token, launch and TLS keys", keys["LoadCredential"])
	}

	// ExecStart: serve --config FILE, then flags that are settings.
	args := strings.Fields(keys["ExecStart"][0])
	if len(args) < 4 || args[1] != "serve" || args[2] != "--config" {
		t.Fatalf("ExecStart %q", args)
	}
	cfg, err := config.Load(filepath.Join("systemd", "config.yaml"), nil)
	if err != nil {
		t.Fatal(err)
	}
	for i := 4; i < len(args); i += 2 {
		if !strings.HasPrefix(args[i], "--") || i+1 >= len(args) {
			t.Fatalf("ExecStart flag %q", args[i:])
		}
		if err := cfg.SetFlag(strings.TrimPrefix(args[i], "--"), args[i+1]); err != nil {
			t.Errorf("ExecStart %s: %v", args[i], err)
		}
	}
	if cfg.NonceKeyFile != "%d/nonce.key" || cfg.TokenKeyFile != "%d/token.pem" || cfg.TLSKey != "%d/tls.key" || cfg.TLSCert == "" {
		t.Errorf("keys not from the credentials directory: %+v", cfg)
	}
	stop := keys["TimeoutStopSec"]
	secs, _ := strconv.Atoi(strings.TrimSuffix(strings.Join(stop, ""), "s"))
	if float64(secs) <= (cfg.ShutdownDelay + cfg.ShutdownTimeout).Seconds() {
		t.Errorf("TimeoutStopSec %q is not more than shutdown_delay + shutdown_timeout (%v)", stop, cfg.ShutdownDelay+cfg.ShutdownTimeout)
	}

	bin, err := exec.LookPath("systemd-analyze")
	if err != nil {
		t.Skip("systemd-analyze is not installed: the unit was checked only by this test's own reading")
	}
	// verify checks that ExecStart's binary exists: point it at a stand-in.
	dir := t.TempDir()
	exe := filepath.Join(dir, "trustgate")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	u := filepath.Join(dir, "trustgate.service")
	if err := os.WriteFile(u, bytes.ReplaceAll(unit, []byte("/usr/local/bin/trustgate"), []byte(exe)), 0o644); err != nil {
		t.Fatal(err)
	}
	out, err := exec.Command(bin, "verify", u).CombinedOutput()
	if err != nil || len(bytes.TrimSpace(out)) != 0 {
		t.Errorf("systemd-analyze verify: %v\n%s", err, out)
	}
	out, err = exec.Command(bin, "security", "--offline=yes", u).CombinedOutput()
	m := regexp.MustCompile(`Overall exposure level for trustgate.service: ([0-9.]+)`).FindSubmatch(out)
	if err != nil || m == nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	if score, _ := strconv.ParseFloat(string(m[1]), 64); score >= 2.0 {
		t.Errorf("systemd-analyze security rates the unit %v, want below 2.0", score)
	}
}
