package testkit

import (
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// OPAVersion is the OPA release the project embeds (go.mod); the external
// policy tests run a server of the same version, so that both engines
// evaluate the same Rego the same way.
const OPAVersion = "v1.22.3"

// OPABinary returns the path of an opa binary: $TRUSTGATE_TEST_OPA when
// set (scripts/test builds OPA at OPAVersion from the Go module proxy into
// a cache directory and sets it), else opa on PATH. Without one the test
// fails when TRUSTGATE_TEST_REQUIRE_OPA is set and is skipped otherwise.
func OPABinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("TRUSTGATE_TEST_OPA"); p != "" {
		if _, err := os.Stat(p); err == nil {
			return p
		}
		t.Fatalf("TRUSTGATE_TEST_OPA=%s: no such file", p)
	}
	if p, err := exec.LookPath("opa"); err == nil {
		return p
	}
	if os.Getenv("TRUSTGATE_TEST_REQUIRE_OPA") != "" {
		t.Fatal("no opa binary (TRUSTGATE_TEST_OPA or PATH) and TRUSTGATE_TEST_REQUIRE_OPA is set")
	}
	t.Skip("no opa binary: set TRUSTGATE_TEST_OPA or run scripts/test, which builds OPA " + OPAVersion + " once")
	return ""
}

// StartOPA runs `opa run --server` on a free loopback port with files
// (name → content, written to a temporary directory) as its arguments;
// a name may carry OPA's data prefix ("trustgate.reference:ref.json").
// It returns the base URL (http://127.0.0.1:PORT) once OPA answers
// /health, and kills the server at cleanup.
func StartOPA(t testing.TB, files map[string][]byte) string {
	t.Helper()
	bin := OPABinary(t)
	dir := t.TempDir()
	for try := 0; try < 5; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		addr := l.Addr().String()
		l.Close()
		args := []string{"run", "--server", "--addr", addr, "--skip-version-check", "--log-level", "error"}
		for name, content := range files {
			prefix, file := "", name
			if i := lastColon(name); i >= 0 {
				prefix, file = name[:i+1], name[i+1:]
			}
			path := filepath.Join(dir, file)
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			args = append(args, prefix+path)
		}
		cmd := exec.Command(bin, args...)
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		url := "http://" + addr
		if waitHealthy(url+"/health", exited) {
			t.Cleanup(func() { cmd.Process.Kill(); <-exited })
			return url
		}
		cmd.Process.Kill()
		<-exited
	}
	t.Fatal("opa did not start")
	return ""
}

func lastColon(s string) int {
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == ':' {
			return i
		}
	}
	return -1
}

// waitHealthy polls url for up to 30 s (OPA compiles its policy first);
// false if the process exited (the port was taken) or the time passed.
func waitHealthy(url string, exited <-chan struct{}) bool {
	c := &http.Client{Timeout: time.Second}
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); {
		if resp, err := c.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case <-exited:
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	return false
}
