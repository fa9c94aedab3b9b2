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

// Dir is a Store over one directory, one regular file per resource,
// named as the resource. The directory and every file in it must be
// accessible by their owner only (no group or other permission bits), and
// no entry may be a symlink: Open refuses otherwise, and Get re-checks the
// file it reads. Files are read at each Get, so a changed secret is
// released from then on.
type Dir struct{ path string }

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
	return &Dir{path: dir}, nil
}

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
	// No symlink is followed, and a FIFO does not block the open.
	f, err := os.OpenFile(filepath.Join(d.path, name), os.O_RDONLY|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, attest.Errorf(attest.ReasonResourceForbidden, "no resource %q in the store", name)
	}
	if err != nil {
		return nil, attest.Errorf(attest.ReasonStoreUnavailable, "resource %q: %w", name, err)
	}
	defer f.Close()
	info, err := f.Stat()
	if err != nil {
		return nil, attest.Errorf(attest.ReasonStoreUnavailable, "resource %q: %w", name, err)
	}
	if !info.Mode().IsRegular() {
		return nil, attest.Errorf(attest.ReasonStoreUnavailable, "resource %q is not a regular file", name)
	}
	if err := ownerOnly(name, info); err != nil {
		return nil, attest.Errorf(attest.ReasonStoreUnavailable, "resource %w; not released", err)
	}
	b, err := io.ReadAll(io.LimitReader(f, MaxSize+1))
	if err != nil {
		return nil, attest.Errorf(attest.ReasonStoreUnavailable, "resource %q: %w", name, err)
	}
	if len(b) > MaxSize {
		return nil, attest.Errorf(attest.ReasonStoreUnavailable, "resource %q is larger than %d bytes; not released", name, MaxSize)
	}
	return b, nil
}
