package certs_test

import (
	"context"
	"errors"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/certs"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/testkit"
	"github.com/trustgate/trustgate/internal/tiered"
)

// 100 verifications of reports from one chip on a cold cache make exactly
// one VCEK request, and every one of them passes.
func TestColdCacheConcurrentVerificationsMakeOneRequest(t *testing.T) {
	t.Parallel()
	kds := realKDS(t, nil)
	kds.SetFault("vcek", testkit.Fault{Delay: 200 * time.Millisecond}) // keep the fetch in flight
	obs := newCounts()
	svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), Dir: t.TempDir()}, KDSURL: kds.URL, Observer: obs})
	v := snp.New(snp.Options{Keys: svc})
	ev := reportEvidence(t, "trustee-report.bin")

	var wg sync.WaitGroup
	errs := make([]error, 100)
	for i := range errs {
		wg.Go(func() {
			_, errs[i] = v.Verify(context.Background(), ev)
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("verification %d: %v", i, err)
		}
	}
	if got := kds.Requests("vcek"); len(got) != 1 {
		t.Fatalf("KDS got %d VCEK requests, want 1: %v", len(got), got)
	}
	if n := obs.lookup(certs.LookupHit) + obs.lookup(certs.LookupMiss); n != 100 {
		t.Errorf("%d lookups counted, want 100", n)
	}
}

// A 429 with Retry-After is waited out exactly as told, and requests never
// come faster than the rate limit (fake clock: waits advance it; one chip
// after another, so that the clock moves only by the client's own waits).
func TestRetryAfterAndRateLimit(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(time.Now())
	kds := realKDS(t, clock.Now)
	kds.SetFault("vcek", testkit.Fault{Status: 429, RetryAfter: "7", Count: 1})
	const every = 2 * time.Second
	svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), NoDisk: true, Clock: clock.Now, Sleep: fakeSleep(clock), RateInterval: every, RateBurst: 1},
		KDSURL: kds.URL,
	})
	for _, req := range threeChips(t) {
		if _, err := svc.EndorsementKey(context.Background(), req); err != nil {
			t.Fatalf("%s: %v", req.Product, err)
		}
	}
	got := kds.Requests("vcek")
	if len(got) != 4 || got[0].Status != 429 {
		t.Fatalf("requests %+v, want a 429 then 3 answers", got)
	}
	if d := got[1].At.Sub(got[0].At); d < 7*time.Second {
		t.Errorf("retried %s after a 429 with Retry-After: 7", d)
	}
	for i := 2; i < len(got); i++ {
		if d := got[i].At.Sub(got[i-1].At); d < every {
			t.Errorf("requests %d and %d %s apart, rate limit %s", i-1, i, d, every)
		}
	}
}

// threeChips are three real chips of testdata: Turin, Genoa, Milan.
func threeChips(t *testing.T) []snp.KeyRequest {
	t.Helper()
	var out []snp.KeyRequest
	for _, s := range []string{
		"Turin:0910b4f884ff4ba9:fmc=1,bl=3,tee=2,snp=5,ucode=97",
		"Genoa:371c55d6d15cb50f16dc31d39a24e300caaabff4431e841111429b73ec45ad67ea6e687ffae7bf84b54a5d0e6d79b3ef6ff0bd8b4cff94c2163af5c5de8718e8:bl=10,tee=0,snp=23,ucode=25",
	} {
		req, err := certs.ParseKeyRequest(s)
		if err != nil {
			t.Fatal(err)
		}
		out = append(out, req)
	}
	return append(out, trusteeReq)
}

// Failures the client retries (500, a hang) and ones it does not (404,
// and a Retry-After longer than it waits), with the reasons they end in.
func TestKDSFailures(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name      string
		fault     testkit.Fault
		wantErr   bool
		wantTries int
	}{
		{"500 once, then served", testkit.Fault{Status: 500, Count: 1}, false, 2},
		{"500 always", testkit.Fault{Status: 500}, true, 3},
		{"hang once, then served", testkit.Fault{Hang: true, Count: 1}, false, 2},
		{"404", testkit.Fault{Status: 404}, true, 1},
		{"429 for an hour", testkit.Fault{Status: 429, RetryAfter: "3600"}, true, 1},
		{"slow but in time", testkit.Fault{Delay: 50 * time.Millisecond}, false, 1},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			clock := testkit.NewClock(time.Now())
			kds := realKDS(t, nil)
			kds.SetFault("vcek", tc.fault)
			// A hang costs RequestTimeout of real time; "slow" is far
			// inside it however busy the machine.
			svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), NoDisk: true, Clock: clock.Now, Sleep: fakeSleep(clock), Attempts: 3, RequestTimeout: 2 * time.Second},
				KDSURL: kds.URL,
			})
			_, err := svc.EndorsementKey(context.Background(), trusteeReq)
			if (err != nil) != tc.wantErr {
				t.Fatalf("err = %v, want error %t", err, tc.wantErr)
			}
			if err != nil && attest.ReasonOf(err) != attest.ReasonVCEKUnavailable {
				t.Errorf("reason %s, want vcek_unavailable", attest.ReasonOf(err))
			}
			if n := len(kds.Requests("vcek")); n != tc.wantTries {
				t.Errorf("%d requests, want %d", n, tc.wantTries)
			}
		})
	}
}

// A 404 is remembered: asking again within NegativeTTL makes no request.
func TestNegativeCache(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(time.Now())
	kds := realKDS(t, nil)
	svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), NoDisk: true, Clock: clock.Now, Sleep: fakeSleep(clock)},
		KDSURL:      kds.URL,
		NegativeTTL: time.Minute})
	wrong := trusteeReq
	wrong.HWID = make([]byte, 64)
	wrong.HWID[0] = 1
	for i := 0; i < 3; i++ {
		if _, err := svc.EndorsementKey(context.Background(), wrong); attest.ReasonOf(err) != attest.ReasonVCEKUnavailable {
			t.Fatalf("wrong hwid: %v", err)
		}
	}
	if n := len(kds.Requests("vcek")); n != 1 {
		t.Fatalf("%d requests within the negative TTL, want 1", n)
	}
	clock.Add(time.Minute + time.Second)
	svc.EndorsementKey(context.Background(), wrong)
	if n := len(kds.Requests("vcek")); n != 2 {
		t.Fatalf("%d requests after the negative TTL, want 2", n)
	}
}

// After a warm-up the KDS goes down: verification keeps passing from disk
// across a restart (a new Service over the same directory), from the
// refresh point on as stale, and stops with vcek_unavailable past the
// maximum staleness.
func TestKDSDownAfterWarmUp(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(time.Now())
	kds := realKDS(t, clock.Now)
	dir := t.TempDir()
	cfg := certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), Dir: dir, Clock: clock.Now, Sleep: fakeSleep(clock), MaxStaleness: 48 * time.Hour, Attempts: 2},
		KDSURL: kds.URL,
	}
	ev := reportEvidence(t, "trustee-report.bin")
	verify := func(svc *certs.Service) error {
		_, err := snp.New(snp.Options{Keys: svc, Now: clock.Now}).Verify(context.Background(), ev)
		return err
	}

	warm := newService(t, cfg)
	if err := warm.Warm(context.Background(), []snp.KeyRequest{trusteeReq}); err != nil {
		// The real Milan CRL cannot be served (it would need AMD's key);
		// the VCEK is what matters here.
		if _, err := warm.EndorsementKey(context.Background(), trusteeReq); err != nil {
			t.Fatal(err)
		}
	}
	warm.Close()
	kds.SetFault("vcek", testkit.Fault{Status: 500})

	obs := newCounts()
	cfg.Observer = obs
	restarted := newService(t, cfg)
	if err := verify(restarted); err != nil {
		t.Fatalf("after a restart with the KDS down: %v", err)
	}
	if obs.lookup(certs.LookupHit) != 1 || len(kds.Requests("vcek")) != 1 {
		t.Fatalf("lookups %v, %d VCEK requests; want a disk hit and only the warm-up request", obs.lookups, len(kds.Requests("vcek")))
	}

	// trustee-vcek.der is valid until 2030-01-24; fetched now, its refresh
	// point is half way there.
	refreshAt := clock.Now().Add(time.Date(2030, 1, 24, 17, 58, 26, 0, time.UTC).Sub(clock.Now()) / 2)
	clock.Add(refreshAt.Sub(clock.Now()) + time.Hour)
	for _, svc := range []*certs.Service{restarted, newService(t, cfg)} {
		if err := verify(svc); err != nil {
			t.Fatalf("stale within the maximum staleness: %v", err)
		}
	}
	if obs.lookup(certs.LookupStale) != 2 {
		t.Errorf("lookups %v, want 2 stale", obs.lookups)
	}

	clock.Add(48 * time.Hour)
	for _, svc := range []*certs.Service{restarted, newService(t, cfg)} {
		err := verify(svc)
		if got := attest.ReasonOf(err); got != attest.ReasonVCEKUnavailable {
			t.Fatalf("past the maximum staleness: reason %s (%v), want vcek_unavailable", got, err)
		}
	}

	// The KDS is back: the key is fetched again and verification passes.
	kds.SetFault("vcek", testkit.Fault{})
	if err := verify(restarted); err != nil {
		t.Fatalf("KDS back: %v", err)
	}
}

// Offline, only what the tiers hold is served, and nothing is asked.
func TestOffline(t *testing.T) {
	t.Parallel()
	kds := realKDS(t, nil)
	dir := t.TempDir()
	online := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), Dir: dir}, KDSURL: kds.URL})
	if _, err := online.EndorsementKey(context.Background(), trusteeReq); err != nil {
		t.Fatal(err)
	}
	offline := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), Dir: dir, Offline: true}, KDSURL: kds.URL})
	if _, err := offline.EndorsementKey(context.Background(), trusteeReq); err != nil {
		t.Fatalf("offline, cached: %v", err)
	}
	turin, _ := certs.ParseKeyRequest("Turin:0910b4f884ff4ba9:fmc=1,bl=3,tee=2,snp=5,ucode=97")
	if _, err := offline.EndorsementKey(context.Background(), turin); attest.ReasonOf(err) != attest.ReasonVCEKUnavailable {
		t.Fatalf("offline, not cached: %v", err)
	}
	// No CRL was fetched or imported: revocation cannot be checked, and
	// the KDS is not asked for the CRL either.
	der, err := offline.EndorsementKey(context.Background(), trusteeReq)
	if err != nil {
		t.Fatal(err)
	}
	pr, _ := snp.AMDRoots().Product(snp.Milan)
	if err := offline.Check(context.Background(), snp.Milan, snp.SignerVCEK, pr.ASK, testkit.Cert(der)); attest.ReasonOf(err) != attest.ReasonVCEKUnavailable {
		t.Fatalf("offline, no CRL: %v", err)
	}
	if n := len(kds.Requests("")); n != 1 {
		t.Fatalf("%d KDS requests, want the online one only", n)
	}
}

// A KDS that answers with another chip's or TCB's VCEK, or a certificate
// not signed by the pinned ASK, is not believed and nothing is cached.
func TestWrongCertificateFromKDSNotCached(t *testing.T) {
	t.Parallel()
	other, err := testkit.NewChain(testkit.ChainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	kds := testkit.NewKDS(t, testkit.KDSOptions{})
	// The fake chain's VCEK, served at its own chip's path, but verified
	// against AMD's pinned roots.
	if err := kds.AddVCEK(other.VCEK()); err != nil {
		t.Fatal(err)
	}
	svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), Dir: t.TempDir()}, KDSURL: kds.URL})
	req := snp.KeyRequest{Product: snp.Milan, Signer: snp.SignerVCEK, HWID: testkit.DefaultChipID[:], TCB: snp.Milan.EncodeTCB(testkit.DefaultTCB)}
	_, err = svc.EndorsementKey(context.Background(), req)
	if attest.ReasonOf(err) != attest.ReasonVCEKUnavailable {
		t.Fatalf("err %v, want vcek_unavailable", err)
	}
	if in := certs.HeldIn(context.Background(), svc, req); len(in) != 0 {
		t.Fatalf("an unverified VCEK is held in %v", in)
	}
}

// Every real VCEK of testdata is fetched at its real path and verifies
// its report (Milan v2 with the product guessed, Genoa model A0h, Turin).
func TestRealReportsThroughService(t *testing.T) {
	t.Parallel()
	kds := realKDS(t, nil)
	svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), Dir: t.TempDir(), RateInterval: -1}, KDSURL: kds.URL})
	v := snp.New(snp.Options{Keys: svc})
	for _, name := range []string{"trustee-report.bin", "openanolis-trustee-turin-report.bin", "trustee-genoa-e2e-report.bin", "virtee-milan-report.hex", "teekit-gcp-milan-report.bin"} {
		if _, err := v.Verify(context.Background(), reportEvidence(t, name)); err != nil {
			t.Errorf("%s: %v", name, err)
		}
	}
	var paths []string
	for _, r := range kds.Requests("vcek") {
		if r.Status == 200 {
			paths = append(paths, r.Path)
		}
	}
	want := "/vcek/v1/Turin/0910b4f884ff4ba9?fmcSPL=1&blSPL=3&teeSPL=2&snpSPL=5&ucodeSPL=97"
	if !slices.Contains(paths, want) {
		t.Errorf("served %q, want among them %q", paths, want)
	}
}

func TestConfigValidation(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name string
		cfg  certs.Config
	}{
		{"bad URL", certs.Config{KDSURL: "kds.example"}},
		{"refresh fraction above 1", certs.Config{Settings: tiered.Settings{RefreshFraction: 1.5}}},
		{"negative burst", certs.Config{Settings: tiered.Settings{RateBurst: -1}}},
		{"negative timeout", certs.Config{Settings: tiered.Settings{RequestTimeout: -time.Second}}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			tc.cfg.NoDisk = true
			if _, err := certs.New(tc.cfg); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 12, 0, 0, 0, time.UTC)
	cases := []struct {
		in   string
		want time.Duration
		ok   bool
	}{
		{"7", 7 * time.Second, true},
		{" 0 ", 0, true},
		{"Sat, 28 Nov 2026 12:00:30 GMT", 30 * time.Second, true},
		{"Sat, 28 Nov 2026 11:00:00 GMT", 0, true},
		{"Fri, 31 Dec 9999 23:59:59 GMT", 24 * time.Hour, true}, // capped: a day at most
		{"99999999", 24 * time.Hour, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"", 0, false},
	}
	for _, tc := range cases {
		got, ok := certs.ParseRetryAfter(tc.in, now)
		if got != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %s, %t; want %s, %t", tc.in, got, ok, tc.want, tc.ok)
		}
	}
}

func TestParseKeyRequest(t *testing.T) {
	t.Parallel()
	cases := []struct {
		in      string
		want    snp.TCBVersion
		hwidLen int
		wantErr bool
	}{
		{"Turin:0910b4f884ff4ba9:fmc=1,bl=3,tee=2,snp=5,ucode=97", 0x6100000005020301, 8, false},
		{"Turin:0910b4f884ff4ba9" + zeros(56) + ":0x6100000005020301", 0x6100000005020301, 8, false},
		{"Milan:ab" + zeros(63) + ":bl=3,snp=8,ucode=115", 0x7308000000000003, 64, false},
		{"Milan:ab" + zeros(63) + ":fmc=1", 0, 0, true},
		{"Milan:ab:bl=3", 0, 0, true},
		{"Venice:ab" + zeros(63) + ":bl=3", 0, 0, true},
		{"Milan:zz:bl=3", 0, 0, true},
		{"Milan:ab" + zeros(63) + ":0x73", 0, 0, true},
		{"Milan:ab" + zeros(63) + ":bl=300", 0, 0, true},
	}
	for _, tc := range cases {
		req, err := certs.ParseKeyRequest(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseKeyRequest(%.30q...): %v, want error %t", tc.in, err, tc.wantErr)
			continue
		}
		if err == nil && (req.TCB != tc.want || len(req.HWID) != tc.hwidLen) {
			t.Errorf("ParseKeyRequest(%.30q...) = TCB %#x, hwid %d bytes; want %#x, %d", tc.in, uint64(req.TCB), len(req.HWID), uint64(tc.want), tc.hwidLen)
		}
	}
}

// Close waits for background refreshes and makes later fetches fail
// fast.
func TestCloseStopsBackground(t *testing.T) {
	t.Parallel()
	kds := realKDS(t, nil)
	kds.SetFault("vcek", testkit.Fault{Hang: true})
	svc, err := certs.New(certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), NoDisk: true}, KDSURL: kds.URL})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	_, err = svc.EndorsementKey(ctx, trusteeReq)
	if !errors.Is(err, context.DeadlineExceeded) || attest.ReasonOf(err) != attest.ReasonVCEKUnavailable {
		t.Fatalf("err %v, want vcek_unavailable wrapping the caller's deadline", err)
	}
	done := make(chan struct{})
	go func() { svc.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close did not return")
	}
}
