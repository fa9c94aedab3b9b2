package secretfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRead(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	cases := []struct {
		name string
		mode os.FileMode
		size int
		want string // substring of the error; "" for success
	}{
		{"owner-only", 0o600, 10, ""},
		{"read-only", 0o400, 10, ""},
		{"group-readable", 0o640, 10, "has mode 0640"},
		{"world-readable", 0o644, 10, "chmod 600"},
		{"too large", 0o600, 101, "larger than 100 bytes"},
	}
	for _, c := range cases {
		p := filepath.Join(dir, c.name)
		if err := os.WriteFile(p, []byte(strings.Repeat("k", c.size)), 0o600); err != nil {
			t.Fatal(err)
		}
		os.Chmod(p, c.mode)
		b, err := Read(p, 100)
		switch {
		case c.want == "" && (err != nil || len(b) != c.size):
			t.Errorf("%s: %d bytes, %v", c.name, len(b), err)
		case c.want != "" && (err == nil || !strings.Contains(err.Error(), c.want)):
			t.Errorf("%s: %v, want an error with %q", c.name, err, c.want)
		}
	}
	// A link to an owner-only file is read; the target's mode is checked.
	os.Symlink(filepath.Join(dir, "owner-only"), filepath.Join(dir, "link"))
	if _, err := Read(filepath.Join(dir, "link"), 100); err != nil {
		t.Errorf("link to an owner-only file: %v", err)
	}
	if _, err := Read(dir, 100); err == nil {
		t.Error("a directory was read")
	}
	if err := Check(dir, os.ModeDir|0o755); err == nil || !strings.Contains(err.Error(), "chmod 700") {
		t.Errorf("directory 0755: %v", err)
	}
}
