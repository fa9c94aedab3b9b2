// Package apptest runs a trustgate verifier on loopback for the tests of
// other packages (the agent's, the commands').
package apptest

import (
	"context"
	"encoding/hex"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/app"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/sim"
)

// SimVerifier returns the config of a --dev-simulator verifier, offline,
// with its certificate cache in a temporary directory, approving the
// simulator's default measurement (label "b1", and for the TDX simulator
// "t1") and granting it the names
// of resources, which it serves from an owner-only store.
func SimVerifier(t testing.TB, resources map[string]string, granted ...string) config.Config {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DevSimulator, cfg.Offline, cfg.CertCacheDir = true, true, filepath.Join(dir, "certs")
	cfg.ShutdownDelay = 0
	cfg.ReferenceValues = filepath.Join(dir, "ref.yaml")
	ref := "measurements:\n"
	pcrs := sim.DefaultPCRs()
	azure := "\n    pcrs: {pcr04: \"" + hex.EncodeToString(pcrs[4][:]) + "\"}\n"
	for _, e := range []string{"label: b1\n", "label: t1\n    tee: tdx\n", "label: az1\n    tee: azure-snp" + azure, "label: az2\n    tee: azure-tdx" + azure, "label: n1\n    tee: nitro\n"} {
		ref += "  - value: \"" + hex.EncodeToString(sim.DefaultMeasurement[:]) + "\"\n    " + e
		if len(granted) > 0 {
			ref += "    resources: [" + strings.Join(granted, ", ") + "]\n"
		}
	}
	write(t, cfg.ReferenceValues, ref)
	if resources != nil {
		cfg.Resources = filepath.Join(dir, "resources")
		if err := os.Mkdir(cfg.Resources, 0o700); err != nil {
			t.Fatal(err)
		}
		for name, v := range resources {
			write(t, filepath.Join(cfg.Resources, name), v)
		}
	}
	return cfg
}

func write(t testing.TB, path, content string) {
	t.Helper()
	if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
}

// Start builds the verifier of cfg and serves it on a loopback port until
// the test ends; it returns the base URL (https:// when cfg has TLS).
func Start(t testing.TB, cfg config.Config) string {
	t.Helper()
	a, err := app.New(context.Background(), cfg, app.Deps{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		a.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("Serve: %v", err)
		}
		a.Close()
	})
	if cfg.TLSCert != "" {
		return "https://" + ln.Addr().String()
	}
	return "http://" + ln.Addr().String()
}
