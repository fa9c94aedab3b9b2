package secretfile

import (
	"fmt"
	"io"
	"io/fs"
	"os"
)

// Check refuses a mode with any group or other permission bit; path only
// names the file in the error, which says what to chmod (600 for a file,
// 700 for a directory).
func Check(path string, mode fs.FileMode) error {
	if perm := mode.Perm(); perm&0o077 != 0 {
		want := "600"
		if mode.IsDir() {
			want = "700"
		}
		return fmt.Errorf("%s has mode %#o: it must be accessible by its owner only (chmod %s %s)", path, perm, want, path)
	}
	return nil
}

// Read reads the regular file at path (a symlink is followed, as mounted
// secrets are often links) after checking the mode of the file it opened,
// so that the file checked is the file read: Check, or CheckMounted when
// path is a key of a Kubernetes Secret volume (InSecretMount). A file of
// more than max bytes is refused.
func Read(path string, max int64) ([]byte, error) {
	check := func(p string, fi fs.FileInfo) error { return Check(p, fi.Mode()) }
	if InSecretMount(path) {
		check = CheckMounted
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	if err := check(path, st); err != nil {
		return nil, err
	}
	b, err := io.ReadAll(io.LimitReader(f, max+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > max {
		return nil, fmt.Errorf("%s is larger than %d bytes", path, max)
	}
	return b, nil
}
