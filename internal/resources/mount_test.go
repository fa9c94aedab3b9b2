package resources

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
)

var versions atomic.Int64

// kubeletWrite lays out dir as the kubelet's AtomicWriter does for a
// Secret volume, and rotates it when called again: the keys go into a new
// "..<timestamp>" directory (mode 0755, files with mode), "..data_tmp"
// links to it and is renamed over "..data" (the atomic swap), each key
// gets its link "NAME -> ..data/NAME", links of keys no longer there are
// removed, and the previous version directory is removed.
func kubeletWrite(t *testing.T, dir string, keys map[string]string, mode os.FileMode) {
	t.Helper()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	old, _ := os.Readlink(filepath.Join(dir, "..data"))
	ts := fmt.Sprintf("..2026_12_01_08_00_00.%09d", versions.Add(1))
	must(os.Mkdir(filepath.Join(dir, ts), 0o755))
	for k, v := range keys {
		p := filepath.Join(dir, ts, k)
		must(os.WriteFile(p, []byte(v), 0o600))
		must(os.Chmod(p, mode))
	}
	must(os.Symlink(ts, filepath.Join(dir, "..data_tmp")))
	must(os.Rename(filepath.Join(dir, "..data_tmp"), filepath.Join(dir, "..data")))
	for k := range keys {
		if err := os.Symlink("..data/"+k, filepath.Join(dir, k)); err != nil && !os.IsExist(err) {
			t.Fatal(err)
		}
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if _, ok := keys[e.Name()]; !ok && !strings.HasPrefix(e.Name(), "..") {
			must(os.Remove(filepath.Join(dir, e.Name())))
		}
	}
	if old != "" {
		must(os.RemoveAll(filepath.Join(dir, old)))
	}
}

func mountDir(t *testing.T) string {
	dir := filepath.Join(t.TempDir(), "secret")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// A Kubernetes Secret volume is a store: its keys are released, and after
// the kubelet swaps ..data, the new values are released, removed keys are
// not, and added keys are.
func TestDirSecretMountRotation(t *testing.T) {
	t.Parallel()
	dir := mountDir(t)
	kubeletWrite(t, dir, map[string]string{"db-password": "v1", "api-key": "k1"}, 0o400)
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	get := func(name, want string, reason attest.Reason) {
		t.Helper()
		b, err := d.Get(ctx, name)
		if attest.ReasonOf(err) != reason || string(b) != want {
			t.Errorf("Get(%s) = %q, %v; want %q, reason %q", name, b, err, want, reason)
		}
	}
	get("db-password", "v1", "")
	get("api-key", "k1", "")
	get("..data", "", attest.ReasonMalformedEvidence)
	kubeletWrite(t, dir, map[string]string{"db-password": "v2", "new-key": "n1"}, 0o400)
	get("db-password", "v2", "")
	get("new-key", "n1", "")
	get("api-key", "", attest.ReasonResourceForbidden)
	get("missing", "", attest.ReasonResourceForbidden)
	// A version directory is never a resource.
	ts, _ := os.Readlink(filepath.Join(dir, "..data"))
	get(ts, "", attest.ReasonMalformedEvidence)
}

// Whatever resolves outside the directory, any link not of the kubelet's
// shape, and any file open to others is refused: by Open when it is there
// at start, by Get (store_unavailable, nothing released) when it appears
// later.
func TestDirSecretMountHostile(t *testing.T) {
	t.Parallel()
	outside := filepath.Join(t.TempDir(), "outside")
	os.Mkdir(outside, 0o700)
	os.WriteFile(filepath.Join(outside, "evil"), []byte("outside"), 0o400)
	cases := []struct {
		name string
		make func(t *testing.T, dir string) // makes resource "evil" hostile
	}{
		{"absolute link", func(t *testing.T, dir string) {
			os.Symlink(filepath.Join(outside, "evil"), filepath.Join(dir, "evil"))
		}},
		{"relative link out", func(t *testing.T, dir string) {
			rel, _ := filepath.Rel(dir, filepath.Join(outside, "evil"))
			os.Symlink(rel, filepath.Join(dir, "evil"))
		}},
		{"through ..data and out", func(t *testing.T, dir string) {
			os.Symlink("..data/../../outside/evil", filepath.Join(dir, "evil"))
		}},
		{"link to another key", func(t *testing.T, dir string) {
			os.Symlink("..data/ok", filepath.Join(dir, "evil"))
		}},
		{"regular file beside the links", func(t *testing.T, dir string) {
			os.WriteFile(filepath.Join(dir, "evil"), []byte("x"), 0o400)
		}},
		{"link in the version directory", func(t *testing.T, dir string) {
			ts, _ := os.Readlink(filepath.Join(dir, "..data"))
			os.Symlink(filepath.Join(outside, "evil"), filepath.Join(dir, ts, "evil"))
			os.Symlink("..data/evil", filepath.Join(dir, "evil"))
		}},
		{"link within the volume", func(t *testing.T, dir string) {
			ts, _ := os.Readlink(filepath.Join(dir, "..data"))
			os.Symlink("ok", filepath.Join(dir, ts, "evil"))
			os.Symlink("..data/evil", filepath.Join(dir, "evil"))
		}},
		{"readable by others", func(t *testing.T, dir string) {
			ts, _ := os.Readlink(filepath.Join(dir, "..data"))
			os.WriteFile(filepath.Join(dir, ts, "evil"), []byte("x"), 0o444)
			os.Chmod(filepath.Join(dir, ts, "evil"), 0o444)
			os.Symlink("..data/evil", filepath.Join(dir, "evil"))
		}},
		{"writable by group", func(t *testing.T, dir string) {
			ts, _ := os.Readlink(filepath.Join(dir, "..data"))
			os.WriteFile(filepath.Join(dir, ts, "evil"), []byte("x"), 0o420)
			os.Chmod(filepath.Join(dir, ts, "evil"), 0o420)
			os.Symlink("..data/evil", filepath.Join(dir, "evil"))
		}},
		{"group read, group 0", func(t *testing.T, dir string) {
			ts, _ := os.Readlink(filepath.Join(dir, "..data"))
			p := filepath.Join(dir, ts, "evil")
			os.WriteFile(p, []byte("x"), 0o440)
			os.Chmod(p, 0o440)
			os.Lchown(p, -1, 0)
			os.Symlink("..data/evil", filepath.Join(dir, "evil"))
		}},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			// At start: Open refuses.
			dir := mountDir(t)
			kubeletWrite(t, dir, map[string]string{"ok": "fine"}, 0o400)
			c.make(t, dir)
			if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "evil") {
				t.Errorf("Open: %v; want a refusal naming evil", err)
			}
			// Later: Get refuses, releases nothing, and the good key is
			// still served.
			dir = mountDir(t)
			kubeletWrite(t, dir, map[string]string{"ok": "fine"}, 0o400)
			d, err := Open(dir)
			if err != nil {
				t.Fatal(err)
			}
			c.make(t, dir)
			if b, err := d.Get(context.Background(), "evil"); attest.ReasonOf(err) != attest.ReasonStoreUnavailable || b != nil {
				t.Errorf("Get: %q, %v; want store_unavailable", b, err)
			}
			if b, err := d.Get(context.Background(), "ok"); err != nil || string(b) != "fine" {
				t.Errorf("Get(ok): %q, %v", b, err)
			}
		})
	}
}

// A ..data that leads anywhere but a version directory beside it, and a
// volume writable by others that is not a read-only mount, are refused.
func TestDirSecretMountLayout(t *testing.T) {
	t.Parallel()
	outside := t.TempDir()
	cases := []struct {
		name string
		make func(dir string)
	}{
		{"..data absolute", func(dir string) { os.Symlink(outside, filepath.Join(dir, "..data")) }},
		{"..data relative out", func(dir string) { os.Symlink("../..", filepath.Join(dir, "..data")) }},
		{"..data to a plain name", func(dir string) {
			os.Mkdir(filepath.Join(dir, "v1"), 0o755)
			os.Symlink("v1", filepath.Join(dir, "..data"))
		}},
		{"..data to a link", func(dir string) {
			os.Symlink(outside, filepath.Join(dir, "..v1"))
			os.Symlink("..v1", filepath.Join(dir, "..data"))
		}},
		{"..data a directory", func(dir string) { os.Mkdir(filepath.Join(dir, "..data"), 0o755) }},
		{"version writable by others", func(dir string) {
			os.Mkdir(filepath.Join(dir, "..v1"), 0o700)
			os.Chmod(filepath.Join(dir, "..v1"), 0o777)
			os.Symlink("..v1", filepath.Join(dir, "..data"))
		}},
		{"volume writable by others", func(dir string) {
			os.Mkdir(filepath.Join(dir, "..v1"), 0o755)
			os.Symlink("..v1", filepath.Join(dir, "..data"))
			os.Chmod(dir, 0o1777)
		}},
	}
	for _, c := range cases {
		dir := mountDir(t)
		c.make(dir)
		if _, err := Open(dir); err == nil {
			t.Errorf("%s: opened", c.name)
		}
	}
}

// A file readable by the verifier's own (non-root) group, as the kubelet
// makes it with the pod's fsGroup, is released from a Secret volume; the
// same mode in an ordinary directory is refused.
func TestDirSecretMountFSGroup(t *testing.T) {
	t.Parallel()
	gid := os.Getegid()
	if gid == 0 {
		groups, _ := os.Getgroups()
		for _, g := range groups {
			if g != 0 {
				gid = g
			}
		}
	}
	if gid == 0 {
		t.Skip("the test process runs in group 0 only; fsGroup read is tested in the container image test (deploy)")
	}
	dir := mountDir(t)
	kubeletWrite(t, dir, map[string]string{"k": "v"}, 0o440)
	ts, _ := os.Readlink(filepath.Join(dir, "..data"))
	if err := os.Lchown(filepath.Join(dir, ts, "k"), -1, gid); err != nil {
		t.Fatal(err)
	}
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := d.Get(context.Background(), "k"); err != nil || string(b) != "v" {
		t.Errorf("Get: %q, %v", b, err)
	}
}
