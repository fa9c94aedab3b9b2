package deploy

import (
	"archive/tar"
	"bytes"
	"debug/elf"
	"encoding/hex"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/testkit"
)

// The image holds exactly both binaries, the CA bundle and the cache
// directory, runs as 65532:65532, and its binaries are static (no ELF
// interpreter, no dynamic section).
func TestImageContents(t *testing.T) {
	t.Parallel()
	d := testkit.RequireDocker(t)
	img := d.Image()
	if u := d.Run("image", "inspect", "-f", "{{.Config.User}}", img); u != "65532:65532" {
		t.Errorf("user %q, want 65532:65532", u)
	}
	cid := d.Run("create", img)
	t.Cleanup(func() { d.Try("rm", "-f", "-v", cid) })
	out, err := exec.Command("docker", "export", cid).Output()
	if err != nil {
		t.Fatal(err)
	}
	var files []string
	tr := tar.NewReader(bytes.NewReader(out))
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		name := strings.TrimSuffix(h.Name, "/")
		switch {
		case name == ".dockerenv", name == "etc/hosts", name == "etc/hostname", name == "etc/resolv.conf", name == "etc/mtab",
			name == "dev", name == "proc", name == "sys", strings.HasPrefix(name, "dev/"):
			continue // made by Docker for every container
		}
		if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeDir && name == "var/cache/trustgate" {
			files = append(files, fmt.Sprintf("%s %o %d:%d", name, h.Mode&0o7777, h.Uid, h.Gid))
		}
	}
	slices.Sort(files)
	want := []string{
		"etc/ssl/certs/ca-certificates.crt 644 0:0",
		"usr/local/bin/trustgate 755 0:0",
		"usr/local/bin/trustgate-agent 755 0:0",
		"var/cache/trustgate 755 65532:65532", // its certs/ is made 0700,
	}
	if !slices.Equal(files, want) {
		t.Errorf("image files:\n%s\nwant:\n%s", strings.Join(files, "\n"), strings.Join(want, "\n"))
	}
	root, _ := testkit.RepoRoot()
	for _, b := range []string{"trustgate", "trustgate-agent"} {
		f, err := elf.Open(filepath.Join(root, ".build", "image", "rootfs", "usr", "local", "bin", b))
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range f.Progs {
			if p.Type == elf.PT_INTERP || p.Type == elf.PT_DYNAMIC {
				t.Errorf("%s is dynamically linked (%v)", b, p.Type)
			}
		}
		f.Close()
	}
	if _, err := d.Try("run", "--rm", "--entrypoint", "/bin/sh", img, "-c", "true"); err == nil {
		t.Error("the image has a shell")
	}
}

// The image runs hardened as Kubernetes runs it (read-only root, no
// capabilities, no new privileges, non-root, the pod's fsGroup as a
// supplementary group): a simulated guest in the same container attests
// to a --dev-simulator verifier on the container's loopback and receives a
// secret served from a directory laid out as the kubelet lays out a
// Secret volume (files root:fsGroup, mode 0440).
func TestImageAttestsInContainer(t *testing.T) {
	t.Parallel()
	d := testkit.RequireDocker(t)
	img := d.Image()
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	cfgDir := filepath.Join(dir, "config")
	os.Mkdir(cfgDir, 0o755)
	ref := fmt.Sprintf("measurements:\n  - value: %q\n    label: b1\n    resources: [db-password]\n", hex.EncodeToString(sim.DefaultMeasurement[:]))
	if err := os.WriteFile(filepath.Join(cfgDir, "ref.yaml"), []byte(ref), 0o644); err != nil {
		t.Fatal(err)
	}
	const fsGroup = 65533
	sec := filepath.Join(dir, "secret")
	os.Mkdir(sec, 0o755)
	ts := "..2026_12_01_08_00_00.000000001"
	os.Mkdir(filepath.Join(sec, ts), 0o755)
	p := filepath.Join(sec, ts, "db-password")
	if err := os.WriteFile(p, []byte("hunter2"), 0o400); err != nil {
		t.Fatal(err)
	}
	os.Chmod(p, 0o440)
	if err := os.Lchown(p, 0, fsGroup); err != nil {
		t.Skipf("cannot give the secret to group %d (not root?): %v", fsGroup, err)
	}
	os.Symlink(ts, filepath.Join(sec, "..data"))
	os.Symlink("..data/db-password", filepath.Join(sec, "db-password"))

	cid := d.Run("run", "-d", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"--group-add", fmt.Sprint(fsGroup), "--network", "none",
		"-v", cfgDir+":/etc/trustgate:ro", "-v", sec+":/run/secrets/trustgate:ro",
		img, "serve", "--dev-simulator", "--offline", "--listen", "127.0.0.1:8080",
		"--reference-values", "/etc/trustgate/ref.yaml", "--resources", "/run/secrets/trustgate")
	t.Cleanup(func() { d.Try("rm", "-f", "-v", cid) })
	var out string
	var err error
	for deadline := time.Now().Add(30 * time.Second); ; {
		out, err = d.Try("exec", cid, "/usr/local/bin/trustgate-agent", "attest", "--verifier", "http://127.0.0.1:8080",
			"--simulate", "--resource", "db-password", "--out", "/var/cache/trustgate/out")
		if err == nil || time.Now().After(deadline) {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil || !strings.HasPrefix(out, "AFFIRMING") {
		logs, _ := d.Try("logs", cid)
		t.Fatalf("agent: %q, %v\nverifier logs:\n%s", out, err, logs)
	}
	// docker cp writes a tar of the file.
	tarOut, err := exec.Command("docker", "cp", cid+":/var/cache/trustgate/out/db-password", "-").Output()
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(bytes.NewReader(tarOut))
	h, err := tr.Next()
	if err != nil {
		t.Fatal(err)
	}
	got, _ := io.ReadAll(tr)
	if string(got) != "hunter2" || h.Mode&0o777 != 0o600 {
		t.Errorf("released secret %q mode %o, want \"hunter2\" 600", got, h.Mode&0o777)
	}
	// The root filesystem is read-only for the verifier's user.
	if _, err := d.Try("exec", cid, "/usr/local/bin/trustgate-agent", "attest", "--verifier", "http://127.0.0.1:8080",
		"--simulate", "--resource", "db-password", "--out", "/out"); err == nil {
		t.Error("the agent wrote to the root filesystem")
	}
}

// Without --dev-simulator the image's default command serves on every
// interface of the container: /healthz and /readyz answer through a port
// published on the host's loopback, and SIGTERM (docker stop) shuts it down
// cleanly: exit status 0.
func TestImageServesPublishedPort(t *testing.T) {
	t.Parallel()
	d := testkit.RequireDocker(t)
	img := d.Image()
	cid := d.Run("run", "-d", "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
		"-p", "127.0.0.1::8080", "-e", "TRUSTGATE_SHUTDOWN_DELAY=1s", img)
	t.Cleanup(func() { d.Try("rm", "-f", "-v", cid) })
	addr := d.Run("port", cid, "8080/tcp")
	addr = strings.Split(addr, "\n")[0]
	for _, path := range []string{"/healthz", "/readyz"} {
		var code int
		for deadline := time.Now().Add(30 * time.Second); ; {
			resp, err := http.Get("http://" + addr + path)
			if err == nil {
				code = resp.StatusCode
				resp.Body.Close()
			}
			if code == http.StatusOK || time.Now().After(deadline) {
				break
			}
			time.Sleep(300 * time.Millisecond)
		}
		if code != http.StatusOK {
			logs, _ := d.Try("logs", cid)
			t.Fatalf("%s: status %d\n%s", path, code, logs)
		}
	}
	d.Run("stop", "-t", "30", cid)
	if code := d.Run("inspect", "-f", "{{.State.ExitCode}}", cid); code != "0" {
		logs, _ := d.Try("logs", cid)
		t.Errorf("exit status %s after SIGTERM\n%s", code, logs)
	}
}

// The first command a user tries in the image works with nothing mounted
// and no network, also with a read-only root: the demo (the image has no
// /tmp; the demo works in the cache volume).
func TestImageDemo(t *testing.T) {
	t.Parallel()
	d := testkit.RequireDocker(t)
	img := d.Image()
	for _, extra := range [][]string{nil, {"--read-only", "--cap-drop", "ALL"}} {
		args := append(append([]string{"run", "--rm", "--network", "none"}, extra...), img, "demo")
		out, err := d.Try(args...)
		if err != nil || !strings.Contains(out, "All steps held") {
			t.Errorf("docker %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}
