package main

import (
	"fmt"
	"os"
	"testing"
)

// TestMain points the user cache directory (where verify, serve and certs
// keep AMD certificates) at a fresh directory, so that no test reads or
// writes the cache of the user running them.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "trustgate-cmd-test-cache-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	os.Setenv("XDG_CACHE_HOME", dir)
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
