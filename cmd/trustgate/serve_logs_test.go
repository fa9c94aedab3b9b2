package main

import (
	"bufio"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/client"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/testkit"
)

// The real `trustgate serve` process, with a real Redis that then stops,
// writes nothing to stderr but JSON lines: go-redis's complaints (it
// prints plain text of its own by default) come through the same JSON
// log, as do every request's line and the shutdown. SIGTERM ends it with
// exit 0.
func TestServeStderrIsOnlyJSONWhenRedisStops(t *testing.T) {
	t.Parallel()
	rdb := testkit.StartRedis(t)
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.yaml")
	os.WriteFile(ref, []byte("measurements:\n  - value: \""+hex.EncodeToString(sim.DefaultMeasurement[:])+"\"\n    label: b1\n"), 0o600)
	cmd := exec.Command(os.Args[0], "serve", "--listen", "127.0.0.1:0", "--dev-simulator", "--offline",
		"--cert-cache-dir", filepath.Join(dir, "certs"), "--redis", "redis://"+rdb.Options().Addr,
		"--reference-values", ref, "--shutdown-delay", "100ms")
	cmd.Env = append(os.Environ(), "TRUSTGATE_TEST_EXEC_MAIN=1")
	// A pipe of our own, not StderrPipe: Wait closes StderrPipe's reading
	// end as soon as the process has exited, which can drop its last lines
	// before they are read. Ours is read to EOF whatever Wait does.
	stderr, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stderr.Close()
	cmd.Stderr = w
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Kill()
	})

	// Every line of stderr, as it comes; the address once "serving" is logged.
	var mu sync.Mutex
	var lines []string
	addr := make(chan string, 1)
	readDone := make(chan struct{})
	go func() {
		defer close(readDone)
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			mu.Lock()
			lines = append(lines, sc.Text())
			mu.Unlock()
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) == nil && rec.Msg == "serving" {
				addr <- rec.Addr
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	var base string
	select {
	case a := <-addr:
		base = "http://" + a
	case err := <-exited:
		t.Fatalf("serve exited: %v\n%s", err, strings.Join(lines, "\n"))
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start in 30 s")
	}
	c := &http.Client{Timeout: 10 * time.Second}
	get := func(path string) int {
		resp, err := c.Get(base + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(v1.PathReadyz); code != http.StatusOK {
		t.Fatalf("readyz with Redis up: %d", code)
	}
	// Whole attestations, through go-sev-guest's parsers and OPA.
	dev, err := sim.New(sim.Options{})
	if err != nil {
		t.Fatal(err)
	}
	api := &client.Client{BaseURL: base}
	ctx := context.Background()
	attest := func(withTable bool) error {
		ch, err := api.Challenge(ctx)
		if err != nil {
			t.Fatal(err)
		}
		req := v1.AttestRequest{Nonce: ch.Nonce, TEE: v1.TEESEVSNP}
		req.Evidence.Report, req.Evidence.CertTable = dev.Report([64]byte(ch.Nonce))
		if !withTable {
			req.Evidence.CertTable = nil
		}
		_, err = api.Attest(ctx, req)
		return err
	}
	if err := attest(true); err != nil {
		t.Fatalf("attest with Redis up: %v", err)
	}
	attest(false) // no VCEK at hand, offline

	// Redis goes away.
	rdb.ShutdownNoSave(context.Background())
	for range 3 {
		if code := get(v1.PathReadyz); code != http.StatusServiceUnavailable {
			t.Errorf("readyz with Redis stopped: %d", code)
		}
	}
	var apiErr *client.APIError
	if err := attest(true); !errors.As(err, &apiErr) || apiErr.Reason != "store_unavailable" {
		t.Errorf("attest with Redis stopped: %v, want store_unavailable", err)
	}
	resp, err := c.Post(base+v1.PathAttest, "application/json", strings.NewReader(`{"nonce":`))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()

	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("serve after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30 s of SIGTERM")
	}
	<-readDone

	mu.Lock()
	defer mu.Unlock()
	msgs := map[string]bool{}
	for _, l := range lines {
		var rec map[string]any
		if err := json.Unmarshal([]byte(l), &rec); err != nil {
			t.Errorf("stderr line is not JSON: %q", l)
			continue
		}
		msg, _ := rec["msg"].(string)
		msgs[msg] = true
		if v, _ := rec["version"].(string); msg == "trustgate serve starting" && v == "" {
			t.Errorf("the start line names no version: %q", l)
		}
	}
	for _, want := range []string{"trustgate serve starting", "serving", "redis client", "attest", "stopped"} {
		if !msgs[want] {
			t.Errorf("no %q line in stderr:\n%s", want, strings.Join(lines, "\n"))
		}
	}
}
