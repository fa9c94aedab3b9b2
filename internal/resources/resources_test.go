package resources

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
)

func TestValidName(t *testing.T) {
	for _, ok := range []string{"db-password", "config.json", "a", "A_1.b-c", strings.Repeat("x", 128)} {
		if err := ValidName(ok); err != nil {
			t.Errorf("%q refused: %v", ok, err)
		}
	}
	for _, bad := range []string{"", ".x", "..", "../x", "x/y", "/etc/passwd", "-rf", "a b", "é", "x\x00", strings.Repeat("x", 129), `x\y`} {
		if ValidName(bad) == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

func TestDirGet(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "r")
	os.Mkdir(dir, 0o700)
	os.WriteFile(filepath.Join(dir, "s"), []byte("secret"), 0o600)
	os.WriteFile(filepath.Join(dir, "big"), make([]byte, MaxSize+1), 0o600)
	if _, err := Open(dir); err == nil || !strings.Contains(err.Error(), "big is") {
		t.Fatalf("an oversized resource was accepted: %v", err)
	}
	os.Remove(filepath.Join(dir, "big"))
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	if b, err := d.Get(ctx, "s"); err != nil || string(b) != "secret" {
		t.Fatalf("Get: %q, %v", b, err)
	}
	cases := []struct {
		name   string
		setup  func()
		reason attest.Reason
	}{
		{"missing", func() {}, attest.ReasonResourceForbidden},
		{"../s", func() {}, attest.ReasonMalformedEvidence},
		// Changed after start: re-checked at each Get.
		{"opened", func() { os.WriteFile(filepath.Join(dir, "opened"), []byte("x"), 0o644) }, attest.ReasonStoreUnavailable},
		{"link", func() { os.Symlink(filepath.Join(dir, "s"), filepath.Join(dir, "link")) }, attest.ReasonStoreUnavailable},
		// A FIFO must not block the release.
		{"fifo", func() { syscall.Mkfifo(filepath.Join(dir, "fifo"), 0o600) }, attest.ReasonStoreUnavailable},
	}
	for _, c := range cases {
		c.setup()
		b, err := d.Get(ctx, c.name)
		if attest.ReasonOf(err) != c.reason || b != nil {
			t.Errorf("%s: %q, %v; want %s", c.name, b, err, c.reason)
		}
	}
}

// The directory Open checked is the one released from (issue 21, item
// 10): swapped for a symlink afterwards, the other directory's files are
// not released; a file with a second hard link is refused at Open and at
// Get; the directory's mode is checked again at each Get.
func TestDirHardening(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	base := t.TempDir()
	dir, other := filepath.Join(base, "r"), filepath.Join(base, "other")
	for _, d := range []string{dir, other} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	os.WriteFile(filepath.Join(dir, "s"), []byte("secret"), 0o600)
	os.WriteFile(filepath.Join(other, "s"), []byte("planted"), 0o600)
	d, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(dir, dir+".old"); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(other, dir); err != nil {
		t.Fatal(err)
	}
	if b, _ := d.Get(ctx, "s"); string(b) == "planted" {
		t.Fatal("the directory swapped for a symlink was released from")
	}

	hard := filepath.Join(base, "h")
	os.Mkdir(hard, 0o700)
	os.WriteFile(filepath.Join(hard, "s"), []byte("secret"), 0o600)
	if err := os.Link(filepath.Join(hard, "s"), filepath.Join(base, "elsewhere")); err != nil {
		t.Fatal(err)
	}
	if _, err := Open(hard); err == nil {
		t.Error("a resource with two hard links was accepted at Open")
	}
	os.Remove(filepath.Join(base, "elsewhere"))
	d, err = Open(hard)
	if err != nil {
		t.Fatal(err)
	}
	if b, err := d.Get(ctx, "s"); err != nil || string(b) != "secret" {
		t.Fatalf("Get: %q, %v", b, err)
	}
	os.Link(filepath.Join(hard, "s"), filepath.Join(base, "elsewhere"))
	if b, err := d.Get(ctx, "s"); attest.ReasonOf(err) != attest.ReasonStoreUnavailable || b != nil {
		t.Errorf("two hard links at Get: %q, %v", b, err)
	}
	os.Remove(filepath.Join(base, "elsewhere"))
	os.Chmod(hard, 0o755)
	if b, err := d.Get(ctx, "s"); attest.ReasonOf(err) != attest.ReasonStoreUnavailable || b != nil {
		t.Errorf("directory made readable by others: %q, %v", b, err)
	}
	os.Chmod(hard, 0o700)
	if _, err := d.Get(ctx, "s"); err != nil {
		t.Errorf("after chmod 700 again: %v", err)
	}
}
