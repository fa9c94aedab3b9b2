package testkit

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// Docker runs the docker CLI for tests of the container image and the
// local multi-replica setup. Its methods fail the test when a command
// fails.
type Docker struct {
	t   testing.TB
	bin string
}

// RequireDocker returns a Docker when the docker CLI is on PATH and its
// daemon answers. Otherwise the test fails when
// TRUSTGATE_TEST_REQUIRE_DOCKER is set (scripts/test sets it when `docker
// info` works, as on CI) and is skipped otherwise.
func RequireDocker(t testing.TB) *Docker {
	t.Helper()
	bin, err := exec.LookPath("docker")
	if err == nil {
		err = exec.Command(bin, "info", "--format", "{{.ServerVersion}}").Run()
	}
	if err != nil {
		if os.Getenv("TRUSTGATE_TEST_REQUIRE_DOCKER") != "" {
			t.Fatalf("docker is not usable (%v) and TRUSTGATE_TEST_REQUIRE_DOCKER is set", err)
		}
		t.Skipf("docker is not usable here (%v); scripts/test requires it where `docker info` works", err)
	}
	return &Docker{t: t, bin: bin}
}

// Run runs docker with args and returns its standard output, trimmed; it
// fails the test (with docker's standard error) when docker fails.
func (d *Docker) Run(args ...string) string {
	d.t.Helper()
	out, err := d.Try(args...)
	if err != nil {
		d.t.Fatalf("docker %s: %v", strings.Join(args, " "), err)
	}
	return out
}

// Try runs docker with args and returns its standard output, trimmed, and
// an error holding its standard error when it fails.
func (d *Docker) Try(args ...string) (string, error) {
	var stdout, stderr bytes.Buffer
	cmd := exec.Command(d.bin, args...)
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Run(); err != nil {
		return strings.TrimSpace(stdout.String()), &cmdError{err: err, stderr: strings.TrimSpace(stderr.String())}
	}
	return strings.TrimSpace(stdout.String()), nil
}

type cmdError struct {
	err    error
	stderr string
}

func (e *cmdError) Error() string { return e.err.Error() + ": " + e.stderr }

var image struct {
	once sync.Once
	tag  string
	err  error
}

// ImageTag is the tag Image builds: one per test process, so that test
// runs side by side neither share nor remove each other's image.
var ImageTag = fmt.Sprintf("trustgate:test-%d", os.Getpid())

// built is every image this process built (Image, Build), for
// RemoveImages.
var built struct {
	mu   sync.Mutex
	tags []string
}

// Build builds the Docker context dir as tag and records it for
// RemoveImages; it fails the test when docker build fails.
func (d *Docker) Build(tag, dir string) string {
	d.t.Helper()
	d.Run("build", "-q", "-t", tag, dir)
	built.mu.Lock()
	built.tags = append(built.tags, tag)
	built.mu.Unlock()
	return tag
}

// RemoveImages removes every image this process built (a test binary's
// TestMain calls it after m.Run), so that test runs leave no images
// behind. It does nothing without docker.
func RemoveImages() {
	built.mu.Lock()
	tags := built.tags
	built.tags = nil
	built.mu.Unlock()
	if len(tags) == 0 {
		return
	}
	exec.Command("docker", append([]string{"rmi", "-f"}, tags...)...).Run()
}

// Image builds the project's container image with scripts/image (once per
// test binary) and returns its tag.
func (d *Docker) Image() string {
	d.t.Helper()
	image.once.Do(func() {
		root, err := RepoRoot()
		if err != nil {
			image.err = err
			return
		}
		cmd := exec.Command(filepath.Join(root, "scripts", "image"), ImageTag)
		cmd.Dir = root
		out, err := cmd.CombinedOutput()
		if err != nil {
			image.err = &cmdError{err: err, stderr: string(out)}
			return
		}
		image.tag = ImageTag
		built.mu.Lock()
		built.tags = append(built.tags, ImageTag)
		built.mu.Unlock()
	})
	if image.err != nil {
		d.t.Fatalf("scripts/image: %v", image.err)
	}
	return image.tag
}

// RepoRoot is the directory of the repository's go.mod, found upwards
// from the working directory.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if b, err := os.ReadFile(filepath.Join(dir, "go.mod")); err == nil && bytes.HasPrefix(b, []byte("module github.com/trustgate/trustgate\n")) {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", os.ErrNotExist
		}
		dir = parent
	}
}
