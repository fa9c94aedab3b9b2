package main

import (
	"bytes"
	"context"
	"encoding/hex"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/app"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/sim"
)

func startVerifier(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DevSimulator, cfg.Offline, cfg.CertCacheDir = true, true, t.TempDir()
	cfg.ReferenceValues = filepath.Join(dir, "ref.yaml")
	os.WriteFile(cfg.ReferenceValues, []byte("measurements:\n  - value: \""+hex.EncodeToString(sim.DefaultMeasurement[:])+"\"\n    label: b1\n"), 0o600)
	a, err := app.New(context.Background(), cfg, app.Deps{})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	t.Cleanup(func() { cancel(); <-done; a.Close() })
	return "http://" + ln.Addr().String()
}

func TestAgentAttestSimulated(t *testing.T) {
	t.Parallel()
	url := startVerifier(t)
	cases := []struct {
		args []string
		code int
		want string
	}{
		{[]string{"attest", "--verifier", url, "--simulate"}, exitOK, "AFFIRMING\ntoken: ey"},
		{[]string{"attest", "--verifier", url, "--simulate", "--sim-measurement", strings.Repeat("11", 48)}, exitRejected, "REJECTED: measurement_mismatch"},
		{[]string{"attest", "--verifier", url}, exitUsage, ""},
		{[]string{"attest", "--verifier", url, "--simulate", "--sim-measurement", "abc"}, exitUsage, ""},
		{[]string{"attest", "--verifier", "http://127.0.0.1:1", "--simulate"}, exitUnavailable, ""},
	}
	for _, c := range cases {
		var out, errOut bytes.Buffer
		code := run(c.args, &out, &errOut)
		if code != c.code || !strings.HasPrefix(out.String(), c.want) {
			t.Errorf("%q: exit %d, stdout %q, stderr %q; want exit %d, %q", c.args, code, out.String(), errOut.String(), c.code, c.want)
		}
	}
}
