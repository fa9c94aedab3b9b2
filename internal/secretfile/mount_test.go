package secretfile

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// A key file of a Kubernetes Secret volume (NAME -> ..data/NAME, ..data ->
// ..<timestamp>) is recognised; other links are not; its mode follows
// CheckMounted: nothing for others, group read only for an own non-root
// group.
func TestSecretMount(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	os.Mkdir(filepath.Join(dir, "..2026_12_01_08_00_00.1"), 0o755)
	os.Symlink("..2026_12_01_08_00_00.1", filepath.Join(dir, "..data"))
	for _, name := range []string{"key", "open", "grp"} {
		os.WriteFile(filepath.Join(dir, "..data", name), []byte("k"), 0o400)
		os.Symlink("..data/"+name, filepath.Join(dir, name))
	}
	os.Chmod(filepath.Join(dir, "..data", "open"), 0o404)
	os.Chmod(filepath.Join(dir, "..data", "grp"), 0o440)
	os.Lchown(filepath.Join(dir, "..data", "grp"), -1, 0)
	os.Symlink("..data/key", filepath.Join(dir, "other"))
	for p, want := range map[string]bool{"key": true, "other": false, "..data": false, "missing": false} {
		if got := InSecretMount(filepath.Join(dir, p)); got != want {
			t.Errorf("InSecretMount(%s) = %v", p, got)
		}
	}
	if b, err := Read(filepath.Join(dir, "key"), 10); err != nil || string(b) != "k" {
		t.Errorf("key: %q, %v", b, err)
	}
	for _, name := range []string{"open", "grp"} {
		if _, err := Read(filepath.Join(dir, name), 10); err == nil || !strings.Contains(err.Error(), "has mode") {
			t.Errorf("%s: %v; want a refusal", name, err)
		}
	}
	// Outside a Secret volume, group read is refused as ever.
	os.WriteFile(filepath.Join(dir, "plain"), []byte("k"), 0o440)
	os.Chmod(filepath.Join(dir, "plain"), 0o440)
	if _, err := Read(filepath.Join(dir, "plain"), 10); err == nil {
		t.Error("a group-readable plain file was read")
	}
}
