package main

import (
	"bufio"
	"encoding/hex"
	"encoding/json"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/sim"
)

// `trustgate serve --admin-listen` serves the admin API on its own
// listener (the API listener has no admin paths), warns that without
// Redis the changes are the replica's alone, and stops with the API on
// SIGTERM.
func TestServeAdminListener(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	ref := filepath.Join(dir, "ref.yaml")
	os.WriteFile(ref, []byte("measurements:\n  - value: \""+hex.EncodeToString(sim.DefaultMeasurement[:])+"\"\n    label: b1\n"), 0o600)
	tokenFile := filepath.Join(dir, "admin.token")
	const token = "serve-admin-token-0123456789"
	os.WriteFile(tokenFile, []byte(token+"\n"), 0o600)
	cmd := exec.Command(os.Args[0], "serve", "--listen", "127.0.0.1:0", "--dev-simulator", "--offline",
		"--cert-cache-dir", filepath.Join(dir, "certs"), "--reference-values", ref, "--shutdown-delay", "0s",
		"--admin-listen", "127.0.0.1:0", "--admin-token-file", tokenFile, "--state-dir", filepath.Join(dir, "state"))
	cmd.Env = append(os.Environ(), "TRUSTGATE_TEST_EXEC_MAIN=1")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	t.Cleanup(func() { cmd.Process.Kill() })
	addrs := make(chan [2]string, 1)
	warned := make(chan bool, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		var api, adm string
		warn := false
		for sc.Scan() {
			var rec struct{ Msg, Addr string }
			if json.Unmarshal(sc.Bytes(), &rec) != nil {
				continue
			}
			switch {
			case rec.Msg == "serving":
				api = rec.Addr
			case rec.Msg == "serving the admin API":
				adm = rec.Addr
			case strings.Contains(rec.Msg, "this replica's alone"):
				warn = true
			}
			if api != "" && adm != "" {
				warned <- warn
				addrs <- [2]string{api, adm}
				api = "x-done"
			}
		}
		io.Copy(io.Discard, stderr)
	}()
	var a [2]string
	select {
	case a = <-addrs:
	case err := <-exited:
		t.Fatalf("serve exited: %v", err)
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not start both listeners in 30 s")
	}
	if !<-warned {
		t.Error("no warning that admin changes without redis are this replica's alone")
	}
	get := func(base string, auth bool) int {
		req, _ := http.NewRequest("GET", "http://"+base+"/admin/v1/reference-values", nil)
		if auth {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if code := get(a[1], true); code != http.StatusOK {
		t.Errorf("admin listener with token: %d", code)
	}
	if code := get(a[1], false); code != http.StatusUnauthorized {
		t.Errorf("admin listener without token: %d", code)
	}
	if code := get(a[0], true); code != http.StatusNotFound {
		t.Errorf("API listener: %d, want 404", code)
	}
	cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-exited:
		if err != nil {
			t.Errorf("serve after SIGTERM: %v", err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("serve did not stop within 30 s of SIGTERM")
	}
}
