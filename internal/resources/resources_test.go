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
