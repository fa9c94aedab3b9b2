// Package resources holds what a verifier releases to attested guests:
// secrets and runtime configuration, each a named byte string. Store is
// the interface a vault or a cloud KMS can implement later; Dir is the
// embedded default, one file per resource.
package resources

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/secretfile"
)

// MaxSize bounds one resource (a secret or a configuration file).
const MaxSize = 32 << 10

// Store returns resources by name. Get fails with an *attest.Error:
// resource_forbidden when there is no such resource, store_unavailable when
// the store cannot be read. Implementations are safe for concurrent use.
type Store interface {
	Get(ctx context.Context, name string) ([]byte, error)
}

// ValidName checks a resource name: 1 to 128 of A–Z a–z 0–9 . _ -, not
// starting with a dot or a dash, so that no name is a path, a hidden file
// or a flag.
func ValidName(name string) error {
	if name == "" || len(name) > 128 {
		return fmt.Errorf("resource name must be 1 to 128 characters")
	}
	if name[0] == '.' || name[0] == '-' {
		return fmt.Errorf("resource name %q starts with %q", name, name[0])
	}
	for _, c := range []byte(name) {
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '.' || c == '_' || c == '-') {
			return fmt.Errorf("resource name %q: only letters, digits, '.', '_' and '-'", name)
		}
	}
	return nil
}

// Dir is a Store over one directory, one resource per entry, named as
// the resource. Files are read at each Get, so a changed secret is
// released from then on. The directory is one of two layouts:
//
//   - an ordinary directory: one regular file per resource; the directory
//     and every file must be accessible by their owner only (no group or
//     other permission bit), and no entry may be a symlink;
//   - a Kubernetes Secret volume as the kubelet lays it out (it has a
//     ..data entry): each resource is a symlink "NAME -> ..data/NAME",
//     ..data is a symlink to a "..<timestamp>" directory beside it, and the
//     kubelet swaps ..data atomically when the Secret changes, so a Get
//     after the swap releases the new value. Files follow
//     secretfile.CheckMounted (nothing for others; group read only for the
//     verifier's own group, the pod's fsGroup); a link of any other shape,
//     and anything that resolves outside the directory, is refused; the
//     directory may be writable by others only on a read-only mount (the
//     kubelet's volume root is a 1777 tmpfs mounted read-only).
//
// In both layouts a file with more than one hard link is refused (a link
// elsewhere could change it unseen).
//
// Open refuses a directory that breaks these rules, and Get re-checks the
// file it reads and, for an ordinary directory, the directory's mode. An
// ordinary directory is read through a handle opened by Open, relative to
// it, so that the path swapped for a symlink (or another directory)
// afterwards does not change what is released.
type Dir struct {
	path    string
	mounted bool     // the kubelet's Secret volume layout
	root    *os.Root // an ordinary directory, opened by Open; nil when mounted
}

// Open checks dir and returns the Store over it; every problem found is
// listed in the error.
func Open(dir string) (*Dir, error) {
	st, err := os.Lstat(dir)
	if err != nil {
		return nil, err
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", dir)
	}
	if _, err := os.Lstat(filepath.Join(dir, secretfile.DataLink)); err == nil {
		return openMounted(dir, st)
	}
	var errs []error
	if err := ownerOnly(dir, st); err != nil {
		errs = append(errs, err)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	for _, e := range entries {
		p := filepath.Join(dir, e.Name())
		info, err := e.Info()
		if err != nil {
			errs = append(errs, err)
			continue
		}
		if err := ValidName(e.Name()); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w (rename or remove it)", p, err))
			continue
		}
		if !info.Mode().IsRegular() {
			errs = append(errs, fmt.Errorf("%s is not a regular file (symlinks and directories are refused)", p))
			continue
		}
		if err := ownerOnly(p, info); err != nil {
			errs = append(errs, err)
		}
		if info.Size() > MaxSize {
			errs = append(errs, fmt.Errorf("%s is %d bytes, more than %d", p, info.Size(), MaxSize))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	r, err := os.OpenRoot(dir)
	if err != nil {
		return nil, err
	}
	d := &Dir{path: dir, root: r}
	if err := d.checkRoot(st); err != nil {
		r.Close()
		return nil, err
	}
	for _, e := range entries {
		f, _, err := openIn(r, e.Name(), filepath.Join(dir, e.Name()), ownerOnly)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f.Close()
	}
	if err := errors.Join(errs...); err != nil {
		r.Close()
		return nil, err
	}
	return d, nil
}

// checkRoot checks that the directory d.root holds is the one Open found
// at d.path (st, from Lstat: not a symlink) and is still accessible by its
// owner only.
func (d *Dir) checkRoot(st fs.FileInfo) error {
	info, err := d.root.Stat(".")
	if err != nil {
		return err
	}
	if st != nil && !os.SameFile(st, info) {
		return fmt.Errorf("%s changed while it was opened", d.path)
	}
	return ownerOnly(d.path, info)
}

// openMounted is Open for the kubelet's Secret volume layout.
func openMounted(dir string, st fs.FileInfo) (*Dir, error) {
	var errs []error
	if st.Mode().Perm()&0o022 != 0 && !readOnlyFS(dir) {
		errs = append(errs, fmt.Errorf("%s has mode %#o and is writable: a Secret volume is mounted read-only", dir, st.Mode().Perm()))
	}
	data, err := secretfile.DataDir(dir)
	if err != nil {
		return nil, fmt.Errorf("%s looks like a Kubernetes Secret volume (it has %s) but is not one: %w", dir, secretfile.DataLink, err)
	}
	if dst, err := os.Lstat(filepath.Join(dir, data)); err != nil {
		errs = append(errs, err)
	} else if dst.Mode().Perm()&0o022 != 0 {
		errs = append(errs, fmt.Errorf("%s has mode %#o: writable by group or others", filepath.Join(dir, data), dst.Mode().Perm()))
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	d := &Dir{path: dir, mounted: true}
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), "..") {
			continue // the kubelet's own: ..data and the versions
		}
		p := filepath.Join(dir, e.Name())
		if err := ValidName(e.Name()); err != nil {
			errs = append(errs, fmt.Errorf("%s: %v (rename or remove it)", p, err))
			continue
		}
		f, info, err := d.openMounted(e.Name())
		if err != nil {
			errs = append(errs, err)
			continue
		}
		f.Close()
		if info.Size() > MaxSize {
			errs = append(errs, fmt.Errorf("%s is %d bytes, more than %d", p, info.Size(), MaxSize))
		}
	}
	if err := errors.Join(errs...); err != nil {
		return nil, err
	}
	return d, nil
}

// errNoResource marks a name the store does not hold.
var errNoResource = errors.New("no such resource")

// openMounted opens the file of resource name in a Secret volume and
// checks it: name is a symlink "..data/NAME", ..data names a version
// directory beside it, the file in that directory is a regular file (not
// a link) with an acceptable mode, and nothing resolves outside d.path.
// If the kubelet swaps ..data meanwhile, it tries again with the new
// version.
func (d *Dir) openMounted(name string) (*os.File, fs.FileInfo, error) {
	p := filepath.Join(d.path, name)
	r, err := os.OpenRoot(d.path)
	if err != nil {
		return nil, nil, err
	}
	defer r.Close()
	t, err := r.Readlink(name)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil, errNoResource
	}
	if err != nil || t != secretfile.MountLink(name) {
		return nil, nil, fmt.Errorf("%s is not a link to %s (a Secret volume holds nothing else)", p, secretfile.MountLink(name))
	}
	var lastErr error
	for range 3 {
		data, err := secretfile.DataDir(d.path)
		if err != nil {
			return nil, nil, err
		}
		f, info, err := openIn(r, data+"/"+name, p, secretfile.CheckMounted)
		if err == nil {
			return f, info, nil
		}
		lastErr = err
		if again, _ := secretfile.DataDir(d.path); again == data {
			break // not a swap in progress
		}
	}
	if errors.Is(lastErr, fs.ErrNotExist) {
		return nil, nil, errNoResource
	}
	return nil, nil, lastErr
}

// openIn opens rel under r: a regular file, not a link, with one hard link
// only, whose mode check accepts; shown names it in errors.
func openIn(r *os.Root, rel, shown string, check func(string, fs.FileInfo) error) (*os.File, fs.FileInfo, error) {
	lst, err := r.Lstat(rel)
	if err != nil {
		return nil, nil, err
	}
	if !lst.Mode().IsRegular() {
		return nil, nil, fmt.Errorf("%s is not a regular file", shown)
	}
	// A FIFO does not block the open; the file opened must be the one
	// checked.
	f, err := r.OpenFile(rel, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		return nil, nil, err
	}
	info, err := f.Stat()
	if err == nil && !os.SameFile(lst, info) {
		err = fmt.Errorf("%s changed while it was opened", shown)
	}
	if err == nil {
		if st, ok := info.Sys().(*syscall.Stat_t); ok && st.Nlink > 1 {
			err = fmt.Errorf("%s has %d hard links: a resource must have one", shown, st.Nlink)
		}
	}
	if err == nil {
		err = check(shown, info)
	}
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, info, nil
}

// readOnlyFS reports whether dir is on a read-only mount.
func readOnlyFS(dir string) bool {
	var s syscall.Statfs_t
	return syscall.Statfs(dir, &s) == nil && s.Flags&stRdonly != 0
}

// stRdonly is ST_RDONLY of statfs(2)'s f_flags.
const stRdonly = 1

// ownerOnly refuses group and other permission bits.
func ownerOnly(p string, info fs.FileInfo) error { return secretfile.Check(p, info.Mode()) }

// Get implements Store.
func (d *Dir) Get(ctx context.Context, name string) ([]byte, error) {
	if err := ValidName(name); err != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "%w", err)
	}
	if err := ctx.Err(); err != nil {
		return nil, attest.Errorf(attest.ReasonStoreUnavailable, "%w", err)
	}
	if d.mounted {
		f, _, err := d.openMounted(name)
		if errors.Is(err, errNoResource) {
			return nil, attest.Errorf(attest.ReasonResourceForbidden, "no resource %q in the store", name)
		}
		if err != nil {
			return nil, attest.Errorf(attest.ReasonStoreUnavailable, "resource %q: %v; not released", name, err)
		}
		defer f.Close()
		return readLimited(f, name)
	}
	// Relative to the directory Open checked, whose mode is checked again;
	// no symlink is followed, and a FIFO does not block the open.
	if err := d.checkRoot(nil); err != nil {
		return nil, attest.Errorf(attest.ReasonStoreUnavailable, "resource directory: %v; not released", err)
	}
	if _, err := d.root.Lstat(name); errors.Is(err, fs.ErrNotExist) {
		return nil, attest.Errorf(attest.ReasonResourceForbidden, "no resource %q in the store", name)
	}
	f, _, err := openIn(d.root, name, name, ownerOnly)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, attest.Errorf(attest.ReasonResourceForbidden, "no resource %q in the store", name)
	}
	if err != nil {
		return nil, attest.Errorf(attest.ReasonStoreUnavailable, "resource %v; not released", err)
	}
	defer f.Close()
	return readLimited(f, name)
}

// readLimited reads the resource name from f, at most MaxSize bytes.
func readLimited(f *os.File, name string) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, attest.Errorf(attest.ReasonStoreUnavailable, "resource %q: %w", name, err)
	}
	if len(b) > MaxSize {
		return nil, attest.Errorf(attest.ReasonStoreUnavailable, "resource %q is larger than %d bytes; not released", name, MaxSize)
	}
	return b, nil
}
