package state

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sync"

	"github.com/trustgate/trustgate/internal/atomicfile"
)

// Dir is a state directory: named JSON records, each replaced atomically
// (mode 0600, the directory 0700). It is safe for concurrent use; two
// processes must not share one.
type Dir struct {
	path string
	mu   sync.Mutex
}

// DefaultDir is the state directory when state_dir is "": the user state
// directory's trustgate ($XDG_STATE_HOME, else ~/.local/state), else the
// user cache directory's trustgate/state.
func DefaultDir() (string, error) {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "trustgate"), nil
	}
	if h, err := os.UserHomeDir(); err == nil && h != "" {
		return filepath.Join(h, ".local", "state", "trustgate"), nil
	}
	d, err := os.UserCacheDir()
	if err != nil {
		return "", fmt.Errorf("no state_dir and no user state or cache directory: %w", err)
	}
	return filepath.Join(d, "trustgate", "state"), nil
}

// OpenDir opens (creating it if need be) the state directory at path; ""
// means DefaultDir.
func OpenDir(path string) (*Dir, error) {
	if path == "" {
		d, err := DefaultDir()
		if err != nil {
			return nil, err
		}
		path = d
	}
	if err := os.MkdirAll(path, 0o700); err != nil {
		return nil, fmt.Errorf("state_dir: %w", err)
	}
	// A record written now tells a read-only directory at start, not at
	// the first change.
	probe := filepath.Join(path, ".writable")
	if err := atomicfile.Write(probe, nil, 0o600); err != nil {
		return nil, fmt.Errorf("state_dir %s is not writable: %w", path, err)
	}
	return &Dir{path: path}, nil
}

// Path is the directory's path.
func (d *Dir) Path() string { return d.path }

var recordName = regexp.MustCompile(`^[a-z0-9_]{1,64}$`)

// Read decodes the record name into v and reports whether it exists.
func (d *Dir) Read(name string, v any) (bool, error) {
	if !recordName.MatchString(name) {
		return false, fmt.Errorf("state record name %q", name)
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	b, err := os.ReadFile(filepath.Join(d.path, name+".json"))
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return false, fmt.Errorf("state record %s: %w", filepath.Join(d.path, name+".json"), err)
	}
	return true, nil
}

// Write replaces the record name with v's JSON, atomically.
func (d *Dir) Write(name string, v any) error {
	if !recordName.MatchString(name) {
		return fmt.Errorf("state record name %q", name)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	return atomicfile.Write(filepath.Join(d.path, name+".json"), append(b, '\n'), 0o600)
}
