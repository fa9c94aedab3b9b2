package main

import (
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"

	"github.com/trustgate/trustgate/internal/app/apptest"
	"github.com/trustgate/trustgate/internal/testkit"
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
	for _, want := range []string{"40 attestations to " + url + " from 4 connections", "affirmed     40, refused 0, unavailable 0", "attestations/s", "p99", "bare ECDSA P-384 verifications/s", "ms per attestation, ratio "} {
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

	// A verifier that refuses the simulated guest stops the run before
	// anything is measured, with the reason and what to do.
	code, out, errOut = runCLI("bench", "--verifier", url, "-n", "10", "-c", "2", "--sim-measurement", strings.Repeat("11", 48))
	if code != exitRejected || out != "" || !strings.Contains(errOut, "refuses the simulated guest (measurement_mismatch)") {
		t.Fatalf("unapproved build: exit %d\n%s%s", code, out, errOut)
	}
	prod := apptest.SimVerifier(t, nil)
	prod.DevSimulator = false // a production verifier: the simulator's root is not AMD's
	prodURL := apptest.Start(t, prod)
	code, out, errOut = runCLI("bench", "--verifier", prodURL, "-n", "10", "-c", "2")
	if code != exitRejected || out != "" || !strings.Contains(errOut, "refuses the simulator's evidence (cert_chain_invalid): bench needs a verifier serving --dev-simulator") {
		t.Fatalf("production verifier: exit %d\n%s%s", code, out, errOut)
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

// fakeCPU fronts a verifier on loopback: it passes every request on,
// counts the attestations, and answers /metrics with cpu[k] as
// process_cpu_seconds_total on the k-th scrape (404 when cpu is nil).
type fakeCPU struct {
	mu      sync.Mutex
	cpu     []float64
	scrapes int
	attests int
}

func startFakeCPU(t *testing.T, verifier string, cpu ...float64) (*fakeCPU, string) {
	t.Helper()
	u, err := url.Parse(verifier)
	if err != nil {
		t.Fatal(err)
	}
	f := &fakeCPU{cpu: cpu}
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.mu.Lock()
		defer f.mu.Unlock()
		switch r.URL.Path {
		case "/metrics":
			if f.cpu == nil || f.scrapes >= len(f.cpu) {
				http.NotFound(w, r)
				return
			}
			fmt.Fprintf(w, "# TYPE process_cpu_seconds_total counter\nprocess_cpu_seconds_total %g\n", f.cpu[f.scrapes])
			f.scrapes++
			return
		case "/v1/attest":
			f.attests++
		}
		f.mu.Unlock()
		defer f.mu.Lock()
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	return f, srv.URL
}

// bench spreads its requests over every --verifier (each challenge and
// its attest to the same one), reads each one's process_cpu_seconds_total
// before and after, and prints their summed CPU per attestation and the
// ratio to one bare verification; without /metrics the line says unknown
// and the run still passes.
func TestBenchServerCPU(t *testing.T) {
	t.Parallel()
	a, urlA := startFakeCPU(t, apptest.Start(t, apptest.SimVerifier(t, nil)), 10, 10.5, 12.5)
	b, urlB := startFakeCPU(t, apptest.Start(t, apptest.SimVerifier(t, nil)), 100, 100.25, 101.5)

	code, out, errOut := runCLI("bench", "--verifier", urlA, "--verifier", urlB, "-n", "40", "-c", "3")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	// 20 each, and the one each that checks, before the load, that the
	// verifier affirms the simulated guest.
	if a.attests != 21 || b.attests != 21 || a.scrapes != 3 || b.scrapes != 3 {
		t.Errorf("attestations %d and %d, scrapes %d and %d; want 21 each, 3 each", a.attests, b.attests, a.scrapes, b.scrapes)
	}
	// (12.5 - 10) + (101.5 - 100) = 4 s over 40 attestations, 0.5 + 0.25
	// of it before the attestations were sent.
	m := regexp.MustCompile(`(?m)^  server cpu   100\.000 ms per attestation, ratio ([0-9.]+) \(one bare ECDSA P-384 verification: ([0-9.]+) ms of CPU; 4\.00 s of verifier CPU for 40 challenges and attestations, 0\.75 s of it for the challenges\)$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no server cpu line for 4 s over 40 in\n%s", out)
	}
	ratio, _ := strconv.ParseFloat(m[1], 64)
	bare, _ := strconv.ParseFloat(m[2], 64)
	// The ratio is printed to two places: bare/100 may round to 0.00 on a
	// fast machine (0.41 ms → 0.0041), so it is compared as printed.
	if bare <= 0 || ratio < 0 || fmt.Sprintf("%.2f", bare/100) != m[1] {
		t.Errorf("ratio %s, bare verification %s ms: want bare/100", m[1], m[2])
	}
	if !strings.Contains(out, "attestations to "+urlA+", "+urlB+" from 3 connections") {
		t.Errorf("verifiers not named in\n%s", out)
	}

	_, urlC := startFakeCPU(t, apptest.Start(t, apptest.SimVerifier(t, nil)))
	code, out, errOut = runCLI("bench", "--verifier", urlC, "-n", "4", "-c", "2")
	if code != exitOK || !strings.Contains(out, "  server cpu   unknown (") || !strings.Contains(out, "404 Not Found") {
		t.Fatalf("no /metrics: exit %d\n%s%s", code, out, errOut)
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

// bench --redis against a verifier with a real Redis prints Redis's
// commands and CPU per attestation (INFO) and, with --redis-monitor, the
// commands MONITOR saw: at least one script of 7 commands per attestation,
// and few more (the replica's probe and admin poll each second; before the
// one script per attestation it was 19.6 commands and 3.1 round trips).
// Counts, not times.
func TestBenchRedis(t *testing.T) {
	t.Parallel()
	rdb := testkit.StartRedis(t)
	redisURL := "redis://" + rdb.Options().Addr
	cfg := apptest.SimVerifier(t, nil)
	cfg.Redis = redisURL
	url := apptest.Start(t, cfg)
	const n = 200
	code, out, errOut := runCLI("bench", "--verifier", url, "-n", fmt.Sprint(n), "-c", "4", "--redis", redisURL, "--redis-monitor")
	if code != exitOK {
		t.Fatalf("exit %d\n%s%s", code, out, errOut)
	}
	m := regexp.MustCompile(`(?m)^  redis        ([0-9.]+) commands per attestation \(INFO total_commands_processed, scripts' own included\), ([0-9.]+) ms of Redis CPU per attestation, ([0-9.]+) of the verifiers' \((\d+) commands`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no redis line in\n%s", out)
	}
	if per, _ := strconv.ParseFloat(m[1], 64); per < 7 || per > 10 {
		t.Errorf("%s Redis commands per attestation, want 7 (one script) and a little for the probes\n%s", m[1], out)
	}
	r := regexp.MustCompile(`(?m)^  redis rtt    ([0-9.]+) client commands per attestation \(MONITOR during the load: (\d+) sent by clients, (\d+) run by scripts\)$`).FindStringSubmatch(out)
	if r == nil {
		t.Fatalf("no redis rtt line in\n%s", out)
	}
	client, _ := strconv.Atoi(r[2])
	scripts, _ := strconv.Atoi(r[3])
	if client < n || float64(client) > 1.5*n || scripts < 6*n {
		t.Errorf("MONITOR: %d client commands and %d by scripts for %d attestations, want one script (6 commands inside) each and a few probes\n%s", client, scripts, n, out)
	}

	if code, _, errOut := runCLI("bench", "--verifier", url, "--redis-monitor"); code != exitUsage || !strings.Contains(errOut, "--redis-monitor needs --redis") {
		t.Fatalf("--redis-monitor alone: exit %d, %s", code, errOut)
	}
}
