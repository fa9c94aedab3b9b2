package testkit

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxudstpm"
)

// SWTPM starts a real TPM 2.0 (Debian's swtpm, a libtpms TPM) for the
// test on a Unix socket in a temporary directory, started up and ready,
// and returns its transport; it is stopped when the test ends. Without
// swtpm on PATH the test is skipped, unless TRUSTGATE_TEST_REQUIRE_SWTPM
// is set (scripts/test, and so CI, sets it): then it fails.
func SWTPM(t testing.TB) transport.TPM {
	t.Helper()
	bin, err := exec.LookPath("swtpm")
	if err != nil {
		if os.Getenv("TRUSTGATE_TEST_REQUIRE_SWTPM") != "" {
			t.Fatal("swtpm is not on PATH and TRUSTGATE_TEST_REQUIRE_SWTPM is set")
		}
		t.Skip("swtpm is not on PATH (scripts/test installs it)")
	}
	dir, err := os.MkdirTemp("", "swtpm") // short: a socket path is at most 108 bytes
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	sock := filepath.Join(dir, "tpm.sock")
	cmd := exec.Command(bin, "socket", "--tpm2", "--tpmstate", "dir="+dir,
		"--server", "type=unixio,path="+sock, "--ctrl", "type=unixio,path="+filepath.Join(dir, "ctrl.sock"),
		"--flags", "not-need-init,startup-clear")
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	// Wait for the socket without a deadline of our own: the test's
	// timeout bounds it (the CI machine is busy).
	for {
		if _, err := os.Stat(sock); err == nil {
			break
		}
		if cmd.ProcessState != nil {
			t.Fatal("swtpm exited")
		}
		time.Sleep(10 * time.Millisecond)
	}
	tpm, err := linuxudstpm.Open(sock)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { tpm.Close() })
	// startup-clear ran; a GetRandom proves the TPM answers.
	if _, err := (tpm2.GetRandom{BytesRequested: 8}).Execute(tpm); err != nil {
		t.Fatalf("swtpm does not answer: %v", err)
	}
	return tpm
}
