package main

import (
	"fmt"
	"os"
	"testing"
)

// TestMain points the user cache directory (where verify, serve and certs
// keep AMD certificates) at a fresh directory, so that no test reads or
// writes the cache of the user running them.
//
// With TRUSTGATE_TEST_EXEC_MAIN=1 the test binary is trustgate itself
// (tests that need the real process, its stderr and its signals).
func TestMain(m *testing.M) {
	if os.Getenv("TRUSTGATE_TEST_EXEC_MAIN") == "1" {
		os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
	}
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
