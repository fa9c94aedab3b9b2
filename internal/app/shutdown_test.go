package app

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/config"
)

// On shutdown the verifier first fails /readyz with 503 "shutting down"
// and goes on serving the API for shutdown_delay; only then does the
// listener close. The delay is long enough (3 s) for the requests made
// right after the signal, on a busy machine; the bounds are generous.
func TestShutdownFailsReadinessThenServesForTheDelay(t *testing.T) {
	t.Parallel()
	const delay = 3 * time.Second
	cfg := config.Default()
	cfg.Listen, cfg.DevSimulator, cfg.Offline = "127.0.0.1:0", true, true
	cfg.CertCacheDir = filepath.Join(t.TempDir(), "certs")
	cfg.ShutdownDelay = delay
	a, err := New(context.Background(), cfg, Deps{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer a.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	base := "http://" + addr
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()

	c := &http.Client{Timeout: 5 * time.Second}
	readyz := func() (int, v1.Health) {
		resp, err := c.Get(base + v1.PathReadyz)
		if err != nil {
			return 0, v1.Health{Error: err.Error()}
		}
		defer resp.Body.Close()
		var h v1.Health
		json.NewDecoder(resp.Body).Decode(&h)
		return resp.StatusCode, h
	}
	challenge := func() int {
		resp, err := c.Post(base+v1.PathChallenge, "application/json", strings.NewReader("{}"))
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code, h := readyz(); code != http.StatusOK {
		t.Fatalf("readyz before shutdown: %d %+v", code, h)
	}

	start := time.Now()
	cancel()
	code, h := readyz()
	chCode := challenge()
	if time.Since(start) >= delay {
		t.Skip("the machine took longer than the delay to ask; nothing to conclude")
	}
	if code != http.StatusServiceUnavailable || h.Status != "unavailable" || h.Error != "shutting down" {
		t.Fatalf("readyz after the signal: %d %+v, want 503 shutting down", code, h)
	}
	if chCode != http.StatusOK {
		t.Fatalf("challenge during the delay: %d, want 200", chCode)
	}
	select {
	case err := <-done:
		t.Fatalf("Serve returned during the delay: %v", err)
	default:
	}

	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Serve: %v", err)
		}
	case <-time.After(delay + cfg.ShutdownTimeout + 10*time.Second):
		t.Fatal("Serve did not return after the delay and the drain")
	}
	if took := time.Since(start); took < delay {
		t.Errorf("the listener closed %v after the signal, before the %v delay", took, delay)
	}
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err == nil {
		conn.Close()
		t.Fatal("the listener still accepts connections after shutdown")
	}
	var op *net.OpError
	if !errors.As(err, &op) {
		t.Fatalf("dial after shutdown: %v", err)
	}
}
