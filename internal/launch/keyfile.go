package launch

import (
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/trustgate/trustgate/internal/secretfile"
)

// maxKeyFile bounds a launch key file, in bytes.
const maxKeyFile = 64 << 10

// ReadKey reads a launch key file: raw bytes or hex text, owner-only (as
// every key file of the verifier, internal/secretfile), at least
// MinKeySize bytes.
func ReadKey(path string) ([]byte, error) {
	b, err := secretfile.Read(path, maxKeyFile)
	if err != nil {
		return nil, err
	}
	if k, err := hex.DecodeString(strings.TrimSpace(string(b))); err == nil {
		clear(b)
		b = k
	}
	if len(b) < MinKeySize {
		return nil, fmt.Errorf("%s: key is %d bytes, want at least %d", path, len(b), MinKeySize)
	}
	return b, nil
}

// KeySource says where LoadOrCreateKey's key came from.
type KeySource int

const (
	KeyRead      KeySource = iota // read from the file
	KeyCreated                    // generated and written to the file (absent before)
	KeyEphemeral                  // generated in memory (no path)
)

// LoadOrCreateKey returns the launch key of path: read when the file
// exists; when it does not, generated and written there (hex, mode 0600,
// never over a file another process created meanwhile); generated in
// memory when path is "".
func LoadOrCreateKey(path string) ([]byte, KeySource, error) {
	if path == "" {
		return GenerateKey(), KeyEphemeral, nil
	}
	k, err := ReadKey(path)
	if err == nil {
		return k, KeyRead, nil
	}
	if !errors.Is(err, fs.ErrNotExist) {
		return nil, 0, err
	}
	// Written whole beside it, then linked into place: another replica
	// creating it at the same time never reads a partial key, and one of
	// the two keys wins.
	tmp, err := os.CreateTemp(filepath.Dir(path), ".launch-key-*")
	if err != nil {
		return nil, 0, fmt.Errorf("%s does not exist and cannot be created there (%w): create it (32 random bytes, hex) and give the same file to every replica", path, err)
	}
	defer os.Remove(tmp.Name())
	k = GenerateKey()
	_, err = tmp.WriteString(hex.EncodeToString(k) + "\n")
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, 0, err
	}
	if err := os.Link(tmp.Name(), path); errors.Is(err, fs.ErrExist) {
		k, err := ReadKey(path)
		return k, KeyRead, err
	} else if err != nil {
		return nil, 0, err
	}
	return k, KeyCreated, nil
}
