package app

import (
	"bytes"
	"encoding/binary"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/testkit"
)

// kdsWorld is a verifier that fetches VCEKs and CRLs from a fake KDS, with
// a fake AMD chain pinned as its roots (so that the fake KDS can serve
// what the real one would), on loopback.
type kdsWorld struct {
	kds   *testkit.KDS
	chain *testkit.Chain // signs the pinned roots and the CRL
	url   string
	app   *App
	logs  *syncLog
}

type syncLog struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *syncLog) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *syncLog) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func startKDSWorld(t *testing.T, mutate func(*config.Config)) *kdsWorld {
	t.Helper()
	chain, err := testkit.NewChain(testkit.ChainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kds := testkit.NewKDS(t, testkit.KDSOptions{})
	now := time.Now()
	crl, err := chain.CRL(1, now.Add(-time.Hour), now.Add(30*24*time.Hour))
	if err != nil {
		t.Fatal(err)
	}
	kds.SetCRL(snp.Milan, snp.SignerVCEK, crl)

	dir := t.TempDir()
	cfg := config.Default()
	cfg.Listen, cfg.Offline, cfg.KDSURL = "127.0.0.1:0", false, kds.URL
	cfg.CertCacheDir = filepath.Join(dir, "certs")
	cfg.ReferenceValues = filepath.Join(dir, "ref.yaml")
	if err := os.WriteFile(cfg.ReferenceValues, []byte(refYAML("")), 0o600); err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(&cfg)
	}
	w := &kdsWorld{kds: kds, chain: chain, logs: &syncLog{}}
	w.app, w.url = serveTest(t, cfg, Deps{Logger: slog.New(slog.NewJSONHandler(w.logs, nil)), Roots: chain.Roots})
	return w
}

// newChip makes a chip the fake KDS knows (a VCEK for chip id i under the
// pinned chain's keys), returning a guest device for it.
func (w *kdsWorld) newChip(t *testing.T, i int) *chipGuest {
	t.Helper()
	var id [64]byte
	binary.BigEndian.PutUint32(id[:], uint32(i))
	id[63] = 0x5a
	c, err := testkit.NewChain(testkit.ChainOptions{CertHWID: id[:]})
	if err != nil {
		t.Fatal(err)
	}
	if err := w.kds.AddVCEK(c.VCEK()); err != nil {
		t.Fatal(err)
	}
	return &chipGuest{chain: c, id: id}
}

// chipGuest makes reports of one chip, without a certificate table (the
// verifier must fetch the VCEK).
type chipGuest struct {
	chain *testkit.Chain
	id    [64]byte
}

func (g *chipGuest) attestBody(nonce []byte) []byte {
	report := g.chain.Report(testkit.ReportFields{Measurement: approved, ReportData: [64]byte(nonce), ChipID: &g.id})
	b, _ := json.Marshal(v1.AttestRequest{Nonce: nonce, TEE: v1.TEESEVSNP, Evidence: v1.SNPEvidence{Report: report}})
	return b
}

// answer is one HTTP answer to an attestation.
type answer struct {
	status     int
	reason     string
	retryAfter string
	took       time.Duration
	err        error
}

// httpFrom is an HTTP client whose connections come from local address
// ip (127.0.0.0/8 is all loopback on Linux), so that the verifier sees a
// client of its own.
func httpFrom(ip string) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(ip)}, Timeout: 5 * time.Second}
	return &http.Client{Transport: &http.Transport{DialContext: d.DialContext, MaxIdleConnsPerHost: 64}, Timeout: 60 * time.Second}
}

func (w *kdsWorld) challenge(t *testing.T, c *http.Client) []byte {
	t.Helper()
	resp, err := c.Post(w.url+v1.PathChallenge, "application/json", strings.NewReader("{}"))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var ch v1.ChallengeResponse
	if err := json.NewDecoder(resp.Body).Decode(&ch); err != nil {
		t.Fatal(err)
	}
	return ch.Nonce
}

func (w *kdsWorld) attest(c *http.Client, body []byte) answer {
	start := time.Now()
	resp, err := c.Post(w.url+v1.PathAttest, "application/json", bytes.NewReader(body))
	if err != nil {
		return answer{err: err, took: time.Since(start)}
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var e v1.Error
	json.Unmarshal(raw, &e)
	return answer{status: resp.StatusCode, reason: e.Reason, retryAfter: resp.Header.Get("Retry-After"), took: time.Since(start)}
}

// With AMD's KDS slow, failing or throttling, a guest whose VCEK is not
// cached is answered within cert_fetch_wait (plus slack) with 503
// vcek_unavailable and a Retry-After, while the fetch goes on; a retry
// once it is done is affirmed. A Retry-After of a day is capped at an hour
// (the answer says so, and so does the log).
func TestKDSFailuresAnsweredWithRetryAfter(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name       string
		fault      testkit.Fault
		recovers   bool   // a retry is affirmed once the fetch is done
		retryAfter string // "" means any whole number of seconds
	}{
		{"slow", testkit.Fault{Delay: 3 * time.Second}, true, ""},
		{"500 once", testkit.Fault{Status: 500, Count: 1}, true, ""},
		{"429 with Retry-After 2", testkit.Fault{Status: 429, RetryAfter: "2", Count: 1}, true, ""},
		{"hang", testkit.Fault{Hang: true}, false, ""},
		{"429 for a day", testkit.Fault{Status: 429, RetryAfter: "86400"}, false, "3600"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			w := startKDSWorld(t, func(c *config.Config) {
				c.KDSRate, c.CertFetchWait = 100*time.Millisecond, 500*time.Millisecond
			})
			w.kds.SetFault("vcek", tc.fault)
			g := w.newChip(t, 1)
			c := httpFrom("127.0.0.1")
			a := w.attest(c, g.attestBody(w.challenge(t, c)))
			if a.err != nil || a.status != http.StatusServiceUnavailable || a.reason != string(attest.ReasonVCEKUnavailable) {
				t.Fatalf("first answer %+v, want 503 vcek_unavailable", a)
			}
			if a.took > 5*time.Second { // cert_fetch_wait is 500 ms; the old code took 40-170 s
				t.Fatalf("answered after %s", a.took)
			}
			if n, err := strconv.Atoi(a.retryAfter); err != nil || n < 1 || (tc.retryAfter != "" && a.retryAfter != tc.retryAfter) {
				t.Fatalf("Retry-After %q, want %s", a.retryAfter, or(tc.retryAfter, "whole seconds"))
			}
			if tc.retryAfter == "3600" {
				if !strings.Contains(w.logs.String(), "capped") {
					t.Errorf("the capped Retry-After is not logged:\n%s", w.logs.String())
				}
				// The outage is seen, and the replica stays ready: it
				// still serves the chips it has cached.
				if h := heldBackGauge(t, w.url); h < 3000 || h > 3600 {
					t.Errorf("trustgate_kds_held_back_seconds %v, want about an hour", h)
				}
				resp, err := http.Get(w.url + v1.PathReadyz)
				if err != nil || resp.StatusCode != http.StatusOK {
					t.Errorf("/readyz while the KDS holds back: %v %v", resp.StatusCode, err)
				}
				resp.Body.Close()
			}
			if !tc.recovers {
				return
			}
			deadline := time.Now().Add(20 * time.Second)
			for {
				a = w.attest(c, g.attestBody(w.challenge(t, c)))
				if a.status == http.StatusOK {
					break
				}
				if a.status != http.StatusServiceUnavailable || time.Now().After(deadline) {
					t.Fatalf("retry: %+v", a)
				}
				time.Sleep(200 * time.Millisecond)
			}
			if n := len(w.kds.Requests("vcek")); n > 3 {
				t.Errorf("%d VCEK requests for one chip, want the fetch (and its retry) only", n)
			}
		})
	}
}

// heldBackGauge reads trustgate_kds_held_back_seconds from /metrics.
func heldBackGauge(t *testing.T, url string) float64 {
	t.Helper()
	resp, err := http.Get(url + v1.PathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	for _, line := range strings.Split(string(body), "\n") {
		if v, ok := strings.CutPrefix(line, "trustgate_kds_held_back_seconds "); ok {
			f, err := strconv.ParseFloat(v, 64)
			if err != nil {
				t.Fatal(err)
			}
			return f
		}
	}
	t.Fatal("/metrics has no trustgate_kds_held_back_seconds")
	return 0
}

func or(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// A client flooding the verifier with made-up chip ids (one reusable
// nonce, reports whose VCEK the KDS answers slowly with 404) does not
// stall another client's genuine new chip: B is affirmed within a bound
// set by the KDS rate (one VCEK fetch of A's ahead of it at most), A's
// requests are refused quickly with 503 vcek_unavailable and Retry-After,
// and the flood (at least 1,500 requests, going on until B is affirmed)
// leaves the verifier's goroutines and heap bounded.
//
// Not parallel: it measures the process's goroutines and heap.
func TestKDSFloodFromOneClientDoesNotStallAnother(t *testing.T) {
	const kdsRate = 500 * time.Millisecond
	w := startKDSWorld(t, func(c *config.Config) {
		c.KDSRate, c.CertFetchWait = kdsRate, 2*time.Second
	})
	// The KDS takes 30 s to say it does not know a made-up chip.
	w.kds.SetFault("vcek_unknown", testkit.Fault{Delay: 30 * time.Second, Status: 404})
	a, b := httpFrom("127.0.0.2"), httpFrom("127.0.0.3")
	g := w.newChip(t, 1)

	baseGoroutines := runtime.NumGoroutine()
	var ms runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&ms)
	baseHeap := ms.HeapAlloc

	// A's flood: made-up chips from 50 workers, one nonce, until B is
	// affirmed and at least 1,500 were sent (at most 20,000).
	nonce := w.challenge(t, a)
	base := g.chain.Report(testkit.ReportFields{Measurement: approved, ReportData: [64]byte(nonce)})
	const minFlood, maxFlood, workers = 1500, 20000, 50
	jobs := make(chan int)
	answers := make(chan answer, maxFlood)
	bDone := make(chan struct{})
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for i := range jobs {
				r := bytes.Clone(base) // a made-up CHIP_ID; the signature is never reached
				binary.BigEndian.PutUint32(r[0x1A0:], uint32(i)+0x10000)
				body, _ := json.Marshal(v1.AttestRequest{Nonce: nonce, TEE: v1.TEESEVSNP, Evidence: v1.SNPEvidence{Report: r}})
				answers <- w.attest(a, body)
			}
		})
	}
	floodDone := make(chan struct{})
	go func() {
		defer close(floodDone)
		defer wg.Wait()
		defer close(jobs)
		for i := range maxFlood {
			if i >= minFlood {
				select {
				case <-bDone:
					return
				default:
				}
			}
			jobs <- i
		}
	}()

	// B arrives while A floods; like the agent it retries on 503.
	time.Sleep(300 * time.Millisecond) // let the flood take hold (not a measure)
	start := time.Now()
	var tries int
	func() {
		defer close(bDone)
		for {
			tries++
			ans := w.attest(b, g.attestBody(w.challenge(t, b)))
			if ans.status == http.StatusOK {
				return
			}
			if ans.status != http.StatusServiceUnavailable || time.Since(start) > 30*time.Second {
				t.Errorf("B's genuine chip: %+v after %s", ans, time.Since(start))
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
	}()
	tookB := time.Since(start)
	// At most one VCEK fetch of A's is ahead of B's at the KDS rate
	// limiter, and B's CRL fetch has a bucket of its own: B needs about
	// 2 KDS intervals. The bound is generous for a busy machine (the old
	// code made B wait for a place among 32 of A's fetches and then
	// behind them, for minutes).
	if bound := 4*kdsRate + 5*time.Second; tookB > bound {
		t.Errorf("B affirmed after %s (%d tries), bound %s", tookB, tries, bound)
	}
	t.Logf("B affirmed after %s (%d tries)", tookB, tries)

	<-floodDone
	close(answers)
	flood := len(answers)
	var slow int
	var worst time.Duration
	causes := map[string]int{}
	for ans := range answers {
		if ans.err != nil || ans.status != http.StatusServiceUnavailable || ans.reason != string(attest.ReasonVCEKUnavailable) || ans.retryAfter == "" {
			t.Fatalf("A's made-up chip: %+v, want 503 vcek_unavailable with Retry-After", ans)
		}
		causes[ans.retryAfter]++
		worst = max(worst, ans.took)
		if ans.took > time.Second {
			slow++
		}
	}
	// Only the request that started A's one fetch at a time waits (up to
	// cert_fetch_wait); the others are refused at once.
	if slow > flood/10 {
		t.Errorf("%d of A's %d requests took over a second (worst %s)", slow, flood, worst)
	}
	t.Logf("A: %d refused, %d over a second, worst %s, Retry-After values %v", flood, slow, worst, causes)
	if n := len(w.kds.Requests("vcek")); n > 60 {
		t.Errorf("the flood caused %d KDS VCEK requests", n)
	}

	// Bounded: goroutines back near where they were once connections are
	// closed, and the heap did not grow by anything like the 180 MB the
	// old code took for this.
	a.CloseIdleConnections()
	b.CloseIdleConnections()
	deadline := time.Now().Add(10 * time.Second)
	for runtime.NumGoroutine() > baseGoroutines+40 {
		if time.Now().After(deadline) {
			t.Fatalf("%d goroutines after the flood, %d before", runtime.NumGoroutine(), baseGoroutines)
		}
		time.Sleep(50 * time.Millisecond)
	}
	runtime.GC()
	runtime.ReadMemStats(&ms)
	grown := int64(ms.HeapAlloc) - int64(baseHeap)
	t.Logf("goroutines %d (before %d), heap grown by %d KiB", runtime.NumGoroutine(), baseGoroutines, grown>>10)
	if grown > 32<<20 {
		t.Errorf("heap grew by %d MiB over the flood", grown>>20)
	}
}
