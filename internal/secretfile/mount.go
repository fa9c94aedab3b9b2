package secretfile

import (
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// DataLink is the entry through which the kubelet publishes the current
// version of a Secret (or ConfigMap) volume: a symlink to a directory
// "..<timestamp>" beside it, replaced atomically (rename) on rotation.
// Each key of the Secret is a symlink "NAME -> ..data/NAME".
const DataLink = "..data"

// DataDir returns the name of the directory ..data points to in the
// volume dir, after checking that it is what the kubelet makes: ..data is
// a symlink whose text is one path element starting with "..", and that
// element names a directory (not a link) in dir. It fails when dir has no
// ..data (an ordinary directory).
func DataDir(dir string) (string, error) {
	t, err := os.Readlink(filepath.Join(dir, DataLink))
	if err != nil {
		return "", err
	}
	if err := dataName(t); err != nil {
		return "", fmt.Errorf("%s: %w", filepath.Join(dir, DataLink), err)
	}
	st, err := os.Lstat(filepath.Join(dir, t))
	if err != nil {
		return "", err
	}
	if !st.IsDir() {
		return "", fmt.Errorf("%s: %s is not a directory", filepath.Join(dir, DataLink), t)
	}
	return t, nil
}

// dataName checks the text of the ..data link: one path element beside
// it, starting with ".." (the kubelet's "..2026_12_01_08_00_00.123456789"),
// so that it cannot lead out of the volume.
func dataName(t string) error {
	if !strings.HasPrefix(t, "..") || t == ".." || t == DataLink || strings.ContainsRune(t, '/') {
		return fmt.Errorf("link to %q: want a \"..<timestamp>\" directory beside it", t)
	}
	return nil
}

// MountLink is the text of the link the kubelet makes for the key name.
func MountLink(name string) string { return DataLink + "/" + name }

// InSecretMount reports whether path is a key of a volume laid out as the
// kubelet lays out Secret volumes: a symlink whose text is exactly
// "..data/" + its own name, beside a ..data that DataDir accepts.
func InSecretMount(path string) bool {
	dir, name := filepath.Split(path)
	if t, err := os.Readlink(path); err != nil || t != MountLink(name) {
		return false
	}
	if dir == "" {
		dir = "."
	}
	_, err := DataDir(dir)
	return err == nil
}

// CheckMounted is Check for a file of a Kubernetes Secret volume. The
// kubelet cannot give such a file to a non-root user: it belongs to root,
// and with the pod's fsGroup it gets that group and group read (mode 0440
// from defaultMode 0400). So group read is accepted when the file's group
// is one the process runs in (its effective or a supplementary group, not
// group 0); any other group bit, and every bit for others, is refused.
func CheckMounted(path string, info fs.FileInfo) error {
	perm := info.Mode().Perm()
	if perm&0o037 != 0 {
		return fmt.Errorf("%s has mode %#o: a Secret mount's file must give nothing to others and at most read to the group (defaultMode 0400)", path, perm)
	}
	if perm&0o040 == 0 {
		return nil
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	if !ok || st.Gid == 0 || !ownGroup(int(st.Gid)) {
		return fmt.Errorf("%s has mode %#o and its group is not the verifier's own (the pod's fsGroup): it must be accessible by its owner only", path, perm)
	}
	return nil
}

// ownGroup reports whether the process runs in group gid.
func ownGroup(gid int) bool {
	if os.Getegid() == gid {
		return true
	}
	groups, err := os.Getgroups()
	if err != nil {
		return false
	}
	for _, g := range groups {
		if g == gid {
			return true
		}
	}
	return false
}
