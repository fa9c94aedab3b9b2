package certs_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/certs"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/testkit"
	"github.com/trustgate/trustgate/internal/tiered"
)

// madeUp is trusteeReq with a made-up chip id numbered i.
func madeUp(i int) snp.KeyRequest {
	req := trusteeReq
	req.HWID = bytes.Clone(req.HWID)
	binary.BigEndian.PutUint32(req.HWID, uint32(i)+1)
	return req
}

// waitUntil polls cond for up to 10 s (a generous bound, not a measure).
func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal(what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// wantRefusal checks a lookup error: vcek_unavailable, of the given
// cause.
func wantRefusal(t *testing.T, what string, err, cause error) {
	t.Helper()
	if attest.ReasonOf(err) != attest.ReasonVCEKUnavailable || !errors.Is(err, cause) {
		t.Fatalf("%s: %v, want vcek_unavailable: %v", what, err, cause)
	}
}

// A lookup waits for a KDS fetch at most FetchWait and then fails with
// vcek_unavailable, while the fetch goes on in the background: once it
// ends, the next lookup is served from memory, and the KDS was asked once.
func TestFetchWaitAnswersWhileFetchGoesOn(t *testing.T) {
	t.Parallel()
	kds := realKDS(t, nil)
	kds.SetFault("vcek", testkit.Fault{Delay: 3 * time.Second})
	svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), NoDisk: true, RateInterval: -1, FetchWait: 100 * time.Millisecond},
		KDSURL: kds.URL,
	})
	_, err := svc.EndorsementKey(context.Background(), trusteeReq)
	wantRefusal(t, "KDS slower than the fetch wait", err, certs.ErrStillRunning)
	if r := kds.Requests("vcek"); len(r) != 1 || r[0].Status != 0 {
		t.Fatalf("KDS requests %+v, want one still unanswered when the lookup was answered", r)
	}
	waitUntil(t, "the background fetch never filled the cache", func() bool {
		return len(certs.HeldIn(context.Background(), svc, trusteeReq)) == 1
	})
	if _, err := svc.EndorsementKey(context.Background(), trusteeReq); err != nil {
		t.Fatalf("retry after the background fetch: %v", err)
	}
	if n := len(kds.Requests("vcek")); n != 1 {
		t.Fatalf("%d KDS requests, want 1", n)
	}
}

// All the waits of one request (a context with attest.WithClient) share one
// FetchWait: a second lookup after the first used it up waits no more.
func TestFetchWaitIsPerRequest(t *testing.T) {
	t.Parallel()
	kds := realKDS(t, nil)
	kds.SetFault("vcek", testkit.Fault{Hang: true})
	const wait = 2 * time.Second
	svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), NoDisk: true, RateInterval: -1, FetchWait: wait}, KDSURL: kds.URL})
	ctx := attest.WithClient(context.Background(), "ip:192.0.2.1")
	_, err := svc.EndorsementKey(ctx, trusteeReq)
	wantRefusal(t, "first wait", err, certs.ErrStillRunning)
	start := time.Now()
	_, err = svc.EndorsementKey(ctx, trusteeReq) // joins the running fetch
	wantRefusal(t, "second wait of the same request", err, certs.ErrStillRunning)
	if d := time.Since(start); d >= wait {
		t.Fatalf("the second lookup of one request waited %s, a FetchWait of its own", d)
	}
}

// Made-up chip ids cannot pile up fetches: at most 32 run at once (beyond
// that a lookup fails at once), a fetch whose callers left goes on (so a
// genuine guest's retry finds it) but gives its place to a new fetch when
// all places are taken, and ends at its fetch deadline.
func TestMadeUpChipsDoNotPileUpFetches(t *testing.T) {
	t.Parallel()
	kds := realKDS(t, nil)
	kds.SetFault("vcek", testkit.Fault{Hang: true})
	// Timeouts far away: nothing below ends a hung request but eviction.
	svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), NoDisk: true, RateInterval: -1, RequestTimeout: time.Hour, FetchTimeout: time.Hour, FetchWait: -1},
		KDSURL: kds.URL, NegativeTTL: -1,
	})
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	errs := make(chan error, 200)
	for i := range 200 {
		wg.Go(func() {
			_, err := svc.EndorsementKey(ctx, madeUp(i))
			errs <- err
		})
	}
	for busy := 0; busy < 200-32; busy++ {
		select {
		case err := <-errs:
			wantRefusal(t, "beyond the bound", err, certs.ErrBusy)
		case <-time.After(10 * time.Second):
			t.Fatalf("only %d lookups failed fast", busy)
		}
	}
	waitUntil(t, "the fetches never reached the KDS", func() bool { return kds.Hanging() == 32 })
	cancel() // every caller gives up
	wg.Wait()
	if n := certs.Fetching(svc); n != 32 {
		t.Fatalf("%d fetches in flight after the callers left, want all 32 going on", n)
	}
	// A genuine chip takes the place of an abandoned fetch.
	kds.SetFault("vcek", testkit.Fault{})
	if _, err := svc.EndorsementKey(context.Background(), trusteeReq); err != nil {
		t.Fatalf("a genuine chip with every place taken by abandoned fetches: %v", err)
	}
	waitUntil(t, "the evicted fetch's request still hangs", func() bool { return kds.Hanging() == 31 })
	if n := certs.Fetching(svc); n != 31 {
		t.Fatalf("%d fetches in flight, want 31", n)
	}
}

// An abandoned fetch ends at its fetch deadline.
func TestAbandonedFetchEndsAtItsDeadline(t *testing.T) {
	t.Parallel()
	kds := realKDS(t, nil)
	kds.SetFault("vcek", testkit.Fault{Hang: true})
	svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), NoDisk: true, RateInterval: -1, RequestTimeout: time.Hour, FetchTimeout: 500 * time.Millisecond, FetchWait: 50 * time.Millisecond},
		KDSURL: kds.URL,
	})
	_, err := svc.EndorsementKey(context.Background(), madeUp(1))
	wantRefusal(t, "hung fetch", err, certs.ErrStillRunning)
	waitUntil(t, "the abandoned fetch outlived its deadline", func() bool { return kds.Hanging() == 0 && certs.Fetching(svc) == 0 })
}

// Beyond MaxWaiting lookups waiting at once, and beyond 16 of one client,
// a lookup fails at once.
func TestWaitingIsBounded(t *testing.T) {
	t.Parallel()
	kds := realKDS(t, nil)
	kds.SetFault("vcek", testkit.Fault{Hang: true})
	svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), NoDisk: true, RateInterval: -1, RequestTimeout: time.Hour, FetchTimeout: time.Hour, FetchWait: -1},
		KDSURL:     kds.URL,
		MaxWaiting: 20})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var wg sync.WaitGroup
	defer wg.Wait()
	defer cancel()
	a := attest.WithClient(ctx, "ip:192.0.2.1")
	for range 16 {
		wg.Go(func() { svc.EndorsementKey(a, trusteeReq) })
	}
	waitUntil(t, "16 lookups of one client never waited", func() bool { return certs.Waiting(svc) == 16 })
	_, err := svc.EndorsementKey(attest.WithClient(ctx, "ip:192.0.2.1"), trusteeReq)
	wantRefusal(t, "the 17th of one client", err, certs.ErrClientWaiting)
	for range 4 {
		wg.Go(func() { svc.EndorsementKey(ctx, trusteeReq) })
	}
	waitUntil(t, "20 lookups never waited", func() bool { return certs.Waiting(svc) == 20 })
	_, err = svc.EndorsementKey(attest.WithClient(ctx, "ip:192.0.2.2"), trusteeReq)
	wantRefusal(t, "the 21st in all", err, certs.ErrTooManyWaiting)
}

// One client has one fetch running at a time, a budget of KDS requests
// (ClientMissBurst at once, then one per ClientMissInterval), and a nonce
// may cause KDS requests for one chip and TCB only; another client is not
// held back by either, and lookups without a client are not bounded.
func TestClientAndNonceBounds(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(time.Now())
	kds := realKDS(t, clock.Now)
	kds.SetFault("vcek_unknown", testkit.Fault{Hang: true})
	svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), NoDisk: true, RateInterval: -1, Clock: clock.Now, Sleep: fakeSleep(clock), RequestTimeout: time.Hour, FetchTimeout: time.Hour, FetchWait: 100 * time.Millisecond},
		KDSURL:             kds.URL,
		ClientMissInterval: time.Minute, NegativeTTL: -1,
	})
	a := func() context.Context { return attest.WithClient(context.Background(), "ip:192.0.2.1") }
	b := attest.WithClient(context.Background(), "ip:192.0.2.2")

	// A's made-up chip hangs at the KDS; A's next one is refused at once.
	_, err := svc.EndorsementKey(a(), madeUp(1))
	wantRefusal(t, "A's first made-up chip", err, certs.ErrStillRunning)
	_, err = svc.EndorsementKey(a(), madeUp(2))
	wantRefusal(t, "A's second made-up chip", err, certs.ErrClientBusy)
	if _, err := svc.EndorsementKey(b, trusteeReq); err != nil {
		t.Fatalf("B's genuine chip while A's fetch hangs: %v", err)
	}

	// Made-up chips answered 404 at once: A may cause 4 KDS requests, then
	// one a minute.
	kds.SetFault("vcek_unknown", testkit.Fault{Status: 404})
	c := func() context.Context { return attest.WithClient(context.Background(), "ip:192.0.2.3") }
	for i := range certs.ClientMissBurst {
		_, err := svc.EndorsementKey(c(), madeUp(10+i))
		if attest.ReasonOf(err) != attest.ReasonVCEKUnavailable || errors.Is(err, certs.ErrClientBudget) {
			t.Fatalf("made-up chip %d within the budget: %v, want the KDS's 404", i, err)
		}
	}
	before := len(kds.Requests("vcek"))
	_, err = svc.EndorsementKey(c(), madeUp(20))
	wantRefusal(t, "beyond the budget", err, certs.ErrClientBudget)
	if d, ok := attest.RetryAfter(err); !ok || d <= 0 || d > time.Minute {
		t.Fatalf("Retry-After hint %s, %t; want up to a minute", d, ok)
	}
	if n := len(kds.Requests("vcek")); n != before {
		t.Fatalf("a refused lookup reached the KDS")
	}
	if _, err := svc.EndorsementKey(context.Background(), madeUp(21)); errors.Is(err, certs.ErrClientBudget) {
		t.Fatalf("a lookup without a client is bounded: %v", err)
	}
	clock.Add(time.Minute)
	_, err = svc.EndorsementKey(c(), madeUp(22))
	if errors.Is(err, certs.ErrClientBudget) {
		t.Fatalf("a minute later: %v", err)
	}

	// One nonce, one chip and TCB: the same chip as another product is
	// allowed (a version 2 report is tried as Milan and Genoa), another
	// chip is not.
	var nonce attest.Nonce
	nonce[0] = 7
	n := func(client string) context.Context {
		return attest.WithNonce(attest.WithClient(context.Background(), client), nonce)
	}
	_, err = svc.EndorsementKey(n("ip:192.0.2.4"), madeUp(30))
	if errors.Is(err, certs.ErrNonceSpent) {
		t.Fatalf("first use of a nonce: %v", err)
	}
	genoa := madeUp(30)
	genoa.Product = snp.Genoa
	_, err = svc.EndorsementKey(n("ip:192.0.2.4"), genoa)
	if errors.Is(err, certs.ErrNonceSpent) {
		t.Fatalf("the same chip as Genoa: %v", err)
	}
	_, err = svc.EndorsementKey(n("ip:192.0.2.5"), madeUp(31))
	wantRefusal(t, "the nonce with another chip, from another client", err, certs.ErrNonceSpent)
}

// A Retry-After of a day is capped at MaxHoldBack (an hour by default),
// and the log says so: nothing is asked within the hour, and the KDS is
// asked again right after it.
func TestRetryAfterCapped(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(time.Now())
	kds := realKDS(t, clock.Now)
	kds.SetFault("vcek", testkit.Fault{Status: 429, RetryAfter: "86400", Count: 1})
	var logs syncBuffer
	svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), NoDisk: true, Clock: clock.Now, Sleep: fakeSleep(clock), Logger: slog.New(slog.NewTextHandler(&logs, nil))},
		KDSURL: kds.URL,
	})
	_, err := svc.EndorsementKey(context.Background(), trusteeReq)
	if attest.ReasonOf(err) != attest.ReasonVCEKUnavailable {
		t.Fatalf("429 for a day: %v", err)
	}
	if d, _ := attest.RetryAfter(err); d != certs.DefaultMaxHoldBack {
		t.Fatalf("Retry-After hint %s, want %s", d, certs.DefaultMaxHoldBack)
	}
	if !strings.Contains(logs.String(), "capped") || !strings.Contains(logs.String(), "retry_after=24h0m0s") {
		t.Fatalf("the cap is not logged:\n%s", logs.String())
	}
	if v, o := certs.HeldBack(svc); v != time.Hour || o != time.Hour {
		t.Fatalf("held back %s (VCEKs), %s (others); want an hour each", v, o)
	}
	// Asked again at once: an hour is longer than a fetch may take, so
	// the lookup fails at once and nothing is sent.
	_, err = svc.EndorsementKey(context.Background(), trusteeReq)
	if d, _ := attest.RetryAfter(err); attest.ReasonOf(err) != attest.ReasonVCEKUnavailable || d != time.Hour {
		t.Fatalf("within the hour: %v (Retry-After %s), want vcek_unavailable with an hour to go", err, d)
	}
	if n := len(kds.Requests("vcek")); n != 1 {
		t.Fatalf("%d KDS requests within the hour, want the one that was throttled", n)
	}
	clock.Add(time.Hour)
	if _, err := svc.EndorsementKey(context.Background(), trusteeReq); err != nil {
		t.Fatalf("after the hour: %v", err)
	}
	r := kds.Requests("vcek")
	if len(r) != 2 || r[1].At.Sub(r[0].At) < time.Hour || r[1].At.Sub(r[0].At) >= 2*time.Hour {
		t.Fatalf("requests %+v, want the second one an hour after the 429", r)
	}
}

// A Retry-After longer than MaxRetryAfter fails the fetch at once (the
// requests are still held back), where a shorter one is waited for, even
// when the fetch itself may take longer.
func TestRetryAfterBeyondMaxFailsAtOnce(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		retryAfter string
		wantErr    bool
		wantTries  int
	}{
		{"30", false, 2},
		{"600", true, 1},
	} {
		t.Run(tc.retryAfter, func(t *testing.T) {
			t.Parallel()
			clock := testkit.NewClock(time.Now())
			kds := realKDS(t, clock.Now)
			kds.SetFault("vcek", testkit.Fault{Status: 503, RetryAfter: tc.retryAfter, Count: 1})
			svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), NoDisk: true, Clock: clock.Now, Sleep: fakeSleep(clock), MaxRetryAfter: time.Minute, FetchTimeout: 3 * time.Hour, FetchWait: -1},
				KDSURL: kds.URL,
			})
			_, err := svc.EndorsementKey(context.Background(), trusteeReq)
			if (err != nil) != tc.wantErr || (err != nil && attest.ReasonOf(err) != attest.ReasonVCEKUnavailable) {
				t.Fatalf("Retry-After %s: %v, want an error: %t", tc.retryAfter, err, tc.wantErr)
			}
			if n := len(kds.Requests("vcek")); n != tc.wantTries {
				t.Fatalf("%d requests, want %d", n, tc.wantTries)
			}
		})
	}
}

// A 429 without Retry-After holds every kind of request back for the
// backoff, as one with it does.
func TestThrottledWithoutRetryAfterHoldsBack(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(time.Now())
	kds := realKDS(t, clock.Now)
	kds.SetFault("vcek", testkit.Fault{Status: 429})
	svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), NoDisk: true, Clock: clock.Now, Sleep: fakeSleep(clock), Attempts: 1, Backoff: 8 * time.Second},
		KDSURL: kds.URL,
	})
	_, err := svc.EndorsementKey(context.Background(), trusteeReq)
	if attest.ReasonOf(err) != attest.ReasonVCEKUnavailable {
		t.Fatalf("429: %v", err)
	}
	v, o := certs.HeldBack(svc)
	if v < 4*time.Second || v > 8*time.Second || o != v {
		t.Fatalf("held back %s (VCEKs), %s (others); want the backoff, 4s to 8s, for both", v, o)
	}
	if d, _ := attest.RetryAfter(err); d != v {
		t.Fatalf("Retry-After hint %s, want %s", d, v)
	}
}

// The KDS client follows no redirect: a 3xx is an error naming it, and
// the place it points to is never asked.
func TestNoRedirects(t *testing.T) {
	t.Parallel()
	for _, code := range []int{301, 302, 307, 308} {
		var mu sync.Mutex
		var asked []string
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			asked = append(asked, r.URL.Path)
			mu.Unlock()
			http.Redirect(w, r, "/elsewhere", code)
		}))
		client := srv.Client()
		svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: client, NoDisk: true, RateInterval: -1}, KDSURL: srv.URL})
		_, err := svc.EndorsementKey(context.Background(), trusteeReq)
		srv.Close()
		if attest.ReasonOf(err) != attest.ReasonVCEKUnavailable || !strings.Contains(err.Error(), fmt.Sprintf("HTTP %d, a redirect", code)) {
			t.Fatalf("%d: %v, want vcek_unavailable naming the redirect", code, err)
		}
		mu.Lock()
		if len(asked) != 1 || asked[0] == "/elsewhere" {
			t.Fatalf("%d: asked %q, want the VCEK path only", code, asked)
		}
		mu.Unlock()
		if client.CheckRedirect != nil {
			t.Fatal("the caller's http.Client was modified")
		}
	}
}

// syncBuffer is a bytes.Buffer safe for a logger's concurrent writes.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// A fetch that ends in failure says why in the log, whatever ended it: a
// redirect or another status that is not retried, or the last of the
// retries. Without that line an operator whose kds_url redirects (http to
// https) sees guests refused with vcek_unavailable and nothing logged.
func TestFailedFetchIsLogged(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		code     int
		attempts int
		want     string
	}{
		{"redirect", http.StatusFound, 4, "status=302"},
		{"forbidden", http.StatusForbidden, 4, "status=403"},
		{"last of the retries", http.StatusInternalServerError, 2, "status=500 attempt=2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				if tc.code == http.StatusFound {
					http.Redirect(w, r, "/elsewhere", tc.code)
					return
				}
				w.WriteHeader(tc.code)
			}))
			defer srv.Close()
			var logs syncBuffer
			svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: srv.Client(), NoDisk: true, RateInterval: -1, Attempts: tc.attempts, Sleep: func(context.Context, time.Duration) error { return nil }, Logger: slog.New(slog.NewTextHandler(&logs, nil))},
				KDSURL: srv.URL,
			})
			_, err := svc.EndorsementKey(context.Background(), trusteeReq)
			if attest.ReasonOf(err) != attest.ReasonVCEKUnavailable {
				t.Fatalf("HTTP %d: %v, want vcek_unavailable", tc.code, err)
			}
			out := logs.String()
			if !strings.Contains(out, "KDS request failed; giving up") || !strings.Contains(out, tc.want) {
				t.Fatalf("the failure is not logged with %q:\n%s", tc.want, out)
			}
			if strings.Contains(out, srv.URL) || strings.Contains(out, "/vcek/") {
				t.Fatalf("the log holds the KDS URL (and so the chip id):\n%s", out)
			}
		})
	}
}
