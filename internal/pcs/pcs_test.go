package pcs_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/pcs"
	"github.com/trustgate/trustgate/internal/tee/tdx"
	"github.com/trustgate/trustgate/internal/testkit"
	"github.com/trustgate/trustgate/internal/tiered"
)

// judged is when the real 2025 collateral (issued 2025-11-17, next update
// 2025-12-17) is current.
var judged = time.Date(2025, 11, 20, 0, 0, 0, 0, time.UTC)

var testdata = filepath.Join("..", "..", "testdata", "tdx")

func quote(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdata, name))
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Ext(name) == ".json" {
		var w struct {
			TDX struct {
				Quote string `json:"quote"`
			} `json:"tdx"`
		}
		if err := json.Unmarshal(b, &w); err != nil {
			t.Fatal(err)
		}
		b = []byte(w.TDX.Quote)
	}
	ev, err := tdx.DecodeQuote(b)
	if err != nil {
		t.Fatal(err)
	}
	return ev.Quote
}

// intelPCS is a fake PCS serving Intel's real collateral of 2025-11-17 with
// Intel's issuer chains.
func intelPCS(t testing.TB) *testkit.PCS {
	t.Helper()
	p := testkit.NewPCS(t)
	if err := p.ServeIntel2025(testdata); err != nil {
		t.Fatal(err)
	}
	return p
}

// newService is a collateral service on p, its clock at clk, its disk tier
// in dir ("" none); mutate changes the config.
func newService(t testing.TB, p *testkit.PCS, clk *testkit.Clock, dir string, mutate func(*pcs.Config)) *pcs.Service {
	t.Helper()
	cfg := pcs.Config{Settings: tiered.Settings{Clock: clk.Now, Dir: dir, NoDisk: dir == "", Backoff: time.Millisecond, MaxBackoff: 10 * time.Millisecond, RateInterval: -1},
		URL: p.URL, RootCRLURL: p.URL + testkit.RootCRLPath,
	}
	if mutate != nil {
		mutate(&cfg)
	}
	s, err := pcs.New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func verifier(s *pcs.Service, clk *testkit.Clock) *tdx.Verifier {
	return tdx.New(tdx.Options{Collateral: s, Now: clk.Now, AllowDebug: true})
}

func status(t testing.TB, v *tdx.Verifier, name string) (string, error) {
	t.Helper()
	got, err := v.VerifyEvidence(context.Background(), attest.Evidence{Quote: quote(t, name)})
	if err != nil {
		return "", err
	}
	return got.(*attest.TDXClaims).TCBStatus, nil
}

// Real quotes verify with the real 2025 collateral fetched from a PCS that
// serves it as Intel does (issuer chains URL-encoded in the headers): the
// TCB statuses are Intel's; each document is fetched once, then served
// from memory.
func TestRealCollateralFromPCS(t *testing.T) {
	t.Parallel()
	p := intelPCS(t)
	clk := testkit.NewClock(judged)
	s := newService(t, p, clk, t.TempDir(), nil)
	v := verifier(s, clk)
	for _, tc := range []struct{ file, want string }{
		{"teekit-phala-quote.dat", "UpToDate"},
		{"teekit-gcp-quote-v4.json", "UpToDate"},
		{"trustee-quote-6.dat", "OutOfDate"},
		{"teekit-phala-quote.dat", "UpToDate"},
	} {
		got, err := status(t, v, tc.file)
		if err != nil || got != tc.want {
			t.Errorf("%s: %q, %v; want %s", tc.file, got, err, tc.want)
		}
	}
	for kind, want := range map[string]int{"tcb": 3, "qe": 1, "pckcrl": 1, "rootcrl": 1} {
		if got := p.Requests(kind); got != want {
			t.Errorf("%s requests: %d, want %d", kind, got, want)
		}
	}
	// An FMSPC PCS does not know: collateral_unavailable.
	_, err := s.Collateral(context.Background(), tdx.CollateralRequest{FMSPC: [6]byte{1, 2, 3, 4, 5, 6}, CA: "platform"})
	if attest.ReasonOf(err) != attest.ReasonCollateralUnavailable || !strings.Contains(err.Error(), "404") {
		t.Errorf("unknown FMSPC: %v", err)
	}
}

// However many verifications miss at once, each document is fetched once.
func TestOneFetchPerDocument(t *testing.T) {
	t.Parallel()
	p := intelPCS(t)
	p.SetFault("tcb", testkit.Fault{Delay: 300 * time.Millisecond})
	clk := testkit.NewClock(judged)
	s := newService(t, p, clk, "", nil)
	v := verifier(s, clk)
	var wg sync.WaitGroup
	errs := make(chan error, 20)
	for range 20 {
		wg.Go(func() {
			if got, err := status(t, v, "teekit-phala-quote.dat"); err != nil || got != "UpToDate" {
				errs <- errors.Join(err, errors.New(got))
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if got := p.Requests("tcb"); got != 1 {
		t.Errorf("%d TCB info requests for 20 concurrent misses, want 1", got)
	}
}

// A PCS that hangs: the verification gives up after FetchWait with
// collateral_unavailable and a Retry-After hint, the fetch goes on in the
// background, and once PCS answers a retry finds the document cached.
func TestHangingPCS(t *testing.T) {
	t.Parallel()
	p := intelPCS(t)
	p.SetFault("qe", testkit.Fault{Hang: true})
	clk := testkit.NewClock(judged)
	s := newService(t, p, clk, "", func(c *pcs.Config) { c.FetchWait = 300 * time.Millisecond; c.RequestTimeout = 2 * time.Second })
	v := verifier(s, clk)
	start := time.Now()
	_, err := status(t, v, "teekit-phala-quote.dat")
	if attest.ReasonOf(err) != attest.ReasonCollateralUnavailable || time.Since(start) > 10*time.Second {
		t.Fatalf("hanging PCS: %v after %s", err, time.Since(start))
	}
	if _, ok := attest.RetryAfter(err); !ok {
		t.Errorf("no Retry-After hint: %v", err)
	}
	// The fetch goes on in the background: one request hangs (polled: on a
	// busy machine it may reach the server after the caller gave up).
	for deadline := time.Now().Add(10 * time.Second); p.Hanging() != 1; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("%d requests hang, want the one background fetch", p.Hanging())
		}
	}
	p.SetFault("qe", testkit.Fault{})
	// The hanging request ends at its request timeout (2 s) at the latest;
	// meanwhile a second request is not made (one fetch per document).
	deadline := time.Now().Add(60 * time.Second)
	for {
		got, err := status(t, v, "teekit-phala-quote.dat")
		if err == nil && got == "UpToDate" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no collateral after PCS recovered: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// 429 with Retry-After: the request is retried after the wait PCS asks for
// (through the service's Sleep), every request is held back meanwhile; a
// Retry-After longer than a fetch waits fails the fetch at once.
func TestRetryAfter(t *testing.T) {
	t.Parallel()
	p := intelPCS(t)
	clk := testkit.NewClock(judged)
	var mu sync.Mutex
	var slept []time.Duration
	sleep := func(ctx context.Context, d time.Duration) error {
		mu.Lock()
		slept = append(slept, d)
		mu.Unlock()
		clk.Add(d)
		return nil
	}
	s := newService(t, p, clk, "", func(c *pcs.Config) { c.Sleep = sleep; c.RateInterval = time.Second })
	p.SetFault("tcb", testkit.Fault{Status: 429, RetryAfter: "30", Count: 1})
	if got, err := status(t, verifier(s, clk), "teekit-phala-quote.dat"); err != nil || got != "UpToDate" {
		t.Fatalf("after a 429: %q, %v", got, err)
	}
	mu.Lock()
	waited := false
	for _, d := range slept {
		waited = waited || d >= 29*time.Second
	}
	mu.Unlock()
	if !waited || p.Requests("tcb") != 2 {
		t.Errorf("slept %v, %d TCB info requests; want a wait of 30 s and 2 requests", slept, p.Requests("tcb"))
	}

	s2 := newService(t, p, clk, "", nil)
	p.SetFault("tcb", testkit.Fault{Status: 429, RetryAfter: "86400"})
	start := time.Now()
	_, err := status(t, verifier(s2, clk), "teekit-gcp-quote-v4.json")
	if attest.ReasonOf(err) != attest.ReasonCollateralUnavailable || !strings.Contains(err.Error(), "Retry-After") || time.Since(start) > 10*time.Second {
		t.Errorf("Retry-After of a day: %v after %s", err, time.Since(start))
	}
	if h := s2.HeldBack(); h < 50*time.Minute || h > time.Hour {
		t.Errorf("held back %s, want the cap of an hour", h)
	}
}

// 500s are retried (Attempts), then collateral_unavailable; a redirect is
// not followed and names its status.
func TestPCSErrors(t *testing.T) {
	t.Parallel()
	p := intelPCS(t)
	clk := testkit.NewClock(judged)
	s := newService(t, p, clk, "", func(c *pcs.Config) { c.Attempts = 3 })
	p.SetFault("tcb", testkit.Fault{Status: 500})
	_, err := status(t, verifier(s, clk), "teekit-phala-quote.dat")
	if attest.ReasonOf(err) != attest.ReasonCollateralUnavailable || !strings.Contains(err.Error(), "500") || p.Requests("tcb") != 3 {
		t.Errorf("500: %v, %d requests", err, p.Requests("tcb"))
	}
	p.SetFault("tcb", testkit.Fault{Status: 302})
	before := p.Requests("other")
	_, err = status(t, verifier(s, clk), "teekit-phala-quote.dat")
	if attest.ReasonOf(err) != attest.ReasonCollateralUnavailable || !strings.Contains(err.Error(), "302") || p.Requests("other") != before {
		t.Errorf("302: %v (followed: %v)", err, p.Requests("other") != before)
	}
}

// Nothing from PCS is used, or kept, before it verifies: a TCB info whose
// body was changed, a TCB info of another FMSPC, a CRL of another issuer,
// a chain header that does not chain to the root.
func TestUnverifiedCollateralIsRefused(t *testing.T) {
	t.Parallel()
	read := func(f string) []byte {
		b, err := os.ReadFile(filepath.Join(testdata, f))
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	chain := string(read("intel-tcb-signing-chain-2025.pem"))
	phala := "B0C06F000000"
	for _, tc := range []struct {
		name   string
		set    func(p *testkit.PCS)
		reason string
	}{
		{"changed TCB info", func(p *testkit.PCS) {
			p.Set("tcb/"+phala, bytes.Replace(read("migtd-tcbinfo-b0c06f000000.json"), []byte(`"UpToDate"`), []byte(`"OutOfDate"`), 1), chain)
		}, "does not verify"},
		{"another FMSPC's TCB info", func(p *testkit.PCS) { p.Set("tcb/"+phala, read("migtd-tcbinfo-90c06f000000.json"), chain) }, "FMSPC 90C06F000000"},
		{"root CRL for the PCK CRL", func(p *testkit.PCS) { p.Set("pckcrl/platform", read("migtd-rootcrl.pem"), "") }, "not of the PCK platform CA"},
		{"QE identity for the TCB info", func(p *testkit.PCS) { p.Set("tcb/"+phala, read("migtd-qeidentity.json"), chain) }, "not one TCB info"},
	} {
		p := intelPCS(t)
		tc.set(p)
		clk := testkit.NewClock(judged)
		dir := t.TempDir()
		s := newService(t, p, clk, dir, nil)
		_, err := status(t, verifier(s, clk), "teekit-phala-quote.dat")
		if attest.ReasonOf(err) != attest.ReasonCollateralUnavailable || !strings.Contains(err.Error(), tc.reason) {
			t.Errorf("%s: %v, want collateral_unavailable mentioning %q", tc.name, err, tc.reason)
		}
		// Nothing of it was stored.
		for _, f := range []string{"v1/tcb/" + phala + ".json", "v1/pckcrl/platform.json"} {
			if tc.name != "root CRL for the PCK CRL" && f == "v1/pckcrl/platform.json" {
				continue
			}
			if tc.name == "root CRL for the PCK CRL" && f != "v1/pckcrl/platform.json" {
				continue
			}
			if _, err := os.Stat(filepath.Join(dir, f)); err == nil {
				t.Errorf("%s: %s was stored", tc.name, f)
			}
		}
	}
}

// The disk tier survives a restart: an offline service over the same
// directory verifies without PCS; Redis shares what one replica fetched
// with another.
func TestTiers(t *testing.T) {
	t.Parallel()
	p := intelPCS(t)
	clk := testkit.NewClock(judged)
	dir := t.TempDir()
	if got, err := status(t, verifier(newService(t, p, clk, dir, nil), clk), "teekit-phala-quote.dat"); err != nil || got != "UpToDate" {
		t.Fatal(got, err)
	}
	off := newService(t, p, clk, dir, func(c *pcs.Config) { c.Offline = true })
	n := p.Requests("tcb")
	if got, err := status(t, verifier(off, clk), "teekit-phala-quote.dat"); err != nil || got != "UpToDate" || p.Requests("tcb") != n {
		t.Errorf("offline over the disk tier: %q, %v", got, err)
	}
	if _, err := status(t, verifier(off, clk), "teekit-gcp-quote-v4.json"); attest.ReasonOf(err) != attest.ReasonCollateralUnavailable || !strings.Contains(err.Error(), "offline") {
		t.Errorf("offline without a copy: %v", err)
	}

	rdb := testkit.StartRedis(t)
	p2 := intelPCS(t)
	a := newService(t, p2, clk, "", func(c *pcs.Config) { c.Redis = rdb })
	b := newService(t, p2, clk, "", func(c *pcs.Config) { c.Redis = rdb })
	for _, s := range []*pcs.Service{a, b} {
		if got, err := status(t, verifier(s, clk), "teekit-phala-quote.dat"); err != nil || got != "UpToDate" {
			t.Fatal(got, err)
		}
	}
	if got := p2.Requests("tcb"); got != 1 {
		t.Errorf("two replicas over Redis made %d TCB info requests, want 1", got)
	}
}

// Refresh before nextUpdate and bounded stale-if-error: a day after the
// fetch the document is refreshed in the background; while PCS fails the
// held copy is served, but never past its nextUpdate.
func TestRefreshAndStaleness(t *testing.T) {
	t.Parallel()
	p := intelPCS(t)
	clk := testkit.NewClock(judged)
	s := newService(t, p, clk, "", nil)
	v := verifier(s, clk)
	if _, err := status(t, v, "teekit-phala-quote.dat"); err != nil {
		t.Fatal(err)
	}
	clk.Add(25 * time.Hour) // past the refresh point (a day)
	if _, err := status(t, v, "teekit-phala-quote.dat"); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for p.Requests("tcb") < 2 {
		if time.Now().After(deadline) {
			t.Fatal("no background refresh past the refresh point")
		}
		time.Sleep(20 * time.Millisecond)
	}
	// PCS fails from now on: the held copy is served until its nextUpdate
	// (2025-12-17), then collateral_unavailable.
	for _, k := range []string{"tcb", "qe", "pckcrl", "rootcrl"} {
		p.SetFault(k, testkit.Fault{Status: 500})
	}
	clk.Add(3 * 24 * time.Hour)
	if got, err := status(t, v, "teekit-phala-quote.dat"); err != nil || got != "UpToDate" {
		t.Errorf("stale within bounds: %q, %v", got, err)
	}
	clk.Add(30 * 24 * time.Hour)
	if _, err := status(t, v, "teekit-phala-quote.dat"); attest.ReasonOf(err) != attest.ReasonCollateralUnavailable {
		t.Errorf("past nextUpdate: %v, want collateral_unavailable", err)
	}
}

// Export writes what a quote needs; Import verifies it and stores it for an
// offline service; a bundle entry that does not verify is refused and
// nothing is stored.
func TestExportImport(t *testing.T) {
	t.Parallel()
	p := intelPCS(t)
	clk := testkit.NewClock(judged)
	online := newService(t, p, clk, "", nil)
	fm, _ := pcs.ParseFMSPC("b0c06f000000")
	entries, err := online.Export(context.Background(), []tdx.CollateralRequest{{FMSPC: fm, CA: "platform"}})
	if err != nil || len(entries) != 4 {
		t.Fatalf("export: %d entries, %v", len(entries), err)
	}
	bad := append([]pcs.BundleEntry(nil), entries...)
	bad[0].Body = bytes.Replace(bad[0].Body, []byte("UpToDate"), []byte("OutOfDate"), 1)
	dir := t.TempDir()
	off := newService(t, p, clk, dir, func(c *pcs.Config) { c.Offline = true })
	if _, err := off.Import(context.Background(), bad); err == nil {
		t.Error("a changed TCB info was imported")
	}
	if got, _ := os.ReadDir(dir); len(got) != 0 {
		t.Errorf("a refused import stored %d entries", len(got))
	}
	res, err := off.Import(context.Background(), entries)
	if err != nil || res.Stored != 4 {
		t.Fatalf("import: %+v, %v", res, err)
	}
	off2 := newService(t, p, clk, dir, func(c *pcs.Config) { c.Offline = true })
	if got, err := status(t, verifier(off2, clk), "teekit-phala-quote.dat"); err != nil || got != "UpToDate" {
		t.Errorf("offline after import: %q, %v", got, err)
	}
}

// No rollback: once a TCB info is held, PCS (or a cache) serving an older
// one for the same FMSPC does not replace it.
func TestOlderCollateralDoesNotReplaceNewer(t *testing.T) {
	t.Parallel()
	p := intelPCS(t)
	clk := testkit.NewClock(judged)
	s := newService(t, p, clk, "", nil)
	fm, _ := pcs.ParseFMSPC("00A06D080000")
	req := []tdx.CollateralRequest{{FMSPC: fm, CA: "platform"}}
	newer, err := os.ReadFile(filepath.Join(testdata, "migtd-tcbinfo-00a06d080000.json")) // issued 2025-11-17
	if err != nil {
		t.Fatal(err)
	}
	older, err := os.ReadFile(filepath.Join(testdata, "trustee-tcbinfo-00a06d080000.json")) // issued 2025-10-27
	if err != nil {
		t.Fatal(err)
	}
	chain, _ := os.ReadFile(filepath.Join(testdata, "intel-tcb-signing-chain-2025.pem"))
	if _, err := s.Export(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	p.Set("tcb/00A06D080000", older, string(chain))
	clk.Add(25 * time.Hour) // past the refresh point: PCS is asked again
	deadline := time.Now().Add(20 * time.Second)
	for p.Requests("tcb") < 2 {
		if _, err := s.Collateral(context.Background(), req[0]); err != nil {
			t.Fatal(err)
		}
		if time.Now().After(deadline) {
			t.Fatal("no refresh")
		}
		time.Sleep(20 * time.Millisecond)
	}
	time.Sleep(100 * time.Millisecond) // let the refresh end
	got, err := s.Export(context.Background(), req)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range got {
		if strings.HasPrefix(e.Name, "tcb/") && !bytes.Equal(e.Body, newer) {
			t.Errorf("the held TCB info was replaced by an older one")
		}
	}
}
