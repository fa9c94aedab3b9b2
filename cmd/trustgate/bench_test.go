package main

import (
	"net"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/app/apptest"
)

// bench against a real verifier on loopback: every attestation affirmed
// and counted, figures printed; an unapproved build is refused with its
// reason and exit status 1; an unreachable verifier is 3.
func TestBench(t *testing.T) {
	t.Parallel()
	url := apptest.Start(t, apptest.SimVerifier(t, nil))

	code, out, errOut := runCLI("bench", "--verifier", url, "-n", "40", "-c", "4")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	for _, want := range []string{"40 attestations to " + url + " from 4 connections", "affirmed     40, refused 0, unavailable 0", "attestations/s", "p99", "bare ECDSA P-384 verifications/s"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in\n%s", want, out)
		}
	}
	m := regexp.MustCompile(`ratio +([0-9.]+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no ratio in\n%s", out)
	}
	if r, err := strconv.ParseFloat(m[1], 64); err != nil || r <= 0 {
		t.Fatalf("ratio %q", m[1])
	}

	code, out, _ = runCLI("bench", "--verifier", url, "-n", "10", "-c", "2", "--sim-measurement", strings.Repeat("11", 48))
	if code != exitRejected || !strings.Contains(out, "affirmed     0, refused 10, unavailable 0 (measurement_mismatch 10)") {
		t.Fatalf("unapproved build: exit %d\n%s", code, out)
	}

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	if code, _, errOut := runCLI("bench", "--verifier", dead, "-n", "2"); code != exitUnavailable || !strings.Contains(errOut, "preparing") {
		t.Fatalf("unreachable verifier: exit %d, %s", code, errOut)
	}
}

func TestBenchUsage(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"bench"},
		{"bench", "--verifier", "http://127.0.0.1:1", "-n", "0"},
		{"bench", "--verifier", "http://127.0.0.1:1", "-c", "0"},
		{"bench", "--verifier", "http://127.0.0.1:1", "--sim-measurement", "abc"},
		{"bench", "--verifier", "http://127.0.0.1:1", "--cert", "x"},
		{"bench", "--verifier", "http://127.0.0.1:1", "extra"},
	} {
		if code, _, _ := runCLI(args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}
