package app

import (
	"bytes"
	"context"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/client"
	"github.com/trustgate/trustgate/internal/agent"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/testkit"
)

// startServerAt is startServer with the verifier's clock now (nil: the
// real clock, which the Redis store compares with Redis's own).
func startServerAt(t testing.TB, mutate func(*config.Config), now func() time.Time) *server {
	t.Helper()
	s, _ := startStoppable(t, mutate, now)
	return s
}

// startStoppable is startServerAt with a function that stops the replica
// (serveStoppable), for a test that restarts it.
func startStoppable(t testing.TB, mutate func(*config.Config), now func() time.Time) (*server, func()) {
	t.Helper()
	dir := t.TempDir()
	s := &server{dir: dir, logs: &bytes.Buffer{}}
	cfg := config.Default()
	cfg.Listen, cfg.DevSimulator, cfg.Offline, cfg.ShutdownDelay = "127.0.0.1:0", true, true, 0
	cfg.CertCacheDir = filepath.Join(dir, "certs")
	cfg.ReferenceValues = filepath.Join(dir, "ref.yaml")
	if err := os.WriteFile(cfg.ReferenceValues, []byte(refYAML("")), 0o600); err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(&cfg)
	}
	var stop func()
	s.app, s.url, stop = serveStoppable(t, cfg, Deps{Logger: newJSONLogger(s), Now: now})
	s.c = &client.Client{BaseURL: s.url}
	return s, stop
}

// sharedKeys returns a config change giving replicas the same nonce and
// token keys, resource store and, when redisAddr is not "", Redis.
func sharedKeys(t *testing.T, redisAddr string) func(*config.Config) {
	dir := t.TempDir()
	nonceKey, tokenKey := filepath.Join(dir, "nonce.key"), filepath.Join(dir, "token.pem")
	if err := os.WriteFile(nonceKey, []byte(strings.Repeat("cd", 32)), 0o600); err != nil {
		t.Fatal(err)
	}
	writeTokenKey(t, tokenKey)
	res := resourceDir(t, map[string]string{"db-password": dbPassword})
	return func(c *config.Config) {
		c.NonceKeyFile, c.TokenKeyFile, c.Resources = nonceKey, tokenKey, res
		if redisAddr != "" {
			c.Redis = "redis://" + redisAddr
		}
	}
}

// wantUnavailable fails unless err is 503 store_unavailable.
func wantUnavailable(t *testing.T, what string, err error) {
	t.Helper()
	if reasonOf(err) != "store_unavailable" || statusOf(err) != http.StatusServiceUnavailable {
		t.Errorf("%s: %v, want 503 store_unavailable", what, err)
	}
}

// SPEC "Single use, precisely": Redis restarted without its data. Two
// replicas share keys and Redis; after the restart, at either replica, the
// nonce and the token used before are refused (503 store_unavailable, not
// accepted again), and so are a nonce and a token issued before but never
// used; one replica logs the loss, once; the real agent, retrying on 503
// with a fresh challenge, gets its secret.
func TestRedisRestartedEmptyRefusesEarlierRecords(t *testing.T) {
	t.Parallel()
	srv := testkit.StartRedisServer(t)
	shared := sharedKeys(t, srv.Addr)
	a, b := startServerAt(t, shared, nil), startServerAt(t, shared, nil)
	g := newGuest(t, sim.Options{})
	ctx := context.Background()

	usedReq := g.request(a.challenge(t), false)
	resp, err := a.c.Attest(ctx, usedReq)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.c.Release(ctx, resp.Token, []string{"db-password"}); err != nil {
		t.Fatal(err)
	}
	unusedTok := attestToken(t, a, g)
	unusedReq := g.request(b.challenge(t), false)

	srv.Restart()

	for _, s := range []*server{b, a} {
		_, err := s.c.Attest(ctx, usedReq)
		wantUnavailable(t, "nonce used before the restart", err)
		_, err = s.c.Release(ctx, resp.Token, []string{"db-password"})
		wantUnavailable(t, "token used before the restart", err)
	}
	_, err = b.c.Attest(ctx, unusedReq)
	wantUnavailable(t, "nonce issued before the restart, unused", err)
	_, err = b.c.Release(ctx, unusedTok, []string{"db-password"})
	wantUnavailable(t, "token issued before the restart, unused", err)
	if n := strings.Count(a.logText()+b.logText(), "may have lost records"); n != 1 {
		t.Errorf("%d loss warnings in the replicas' logs, want 1:\n%s\n%s", n, a.logText(), b.logText())
	}

	start := time.Now()
	got, err := agent.Fetch(ctx, agent.Options{
		Client: b.c, Device: agent.SimDevice{Sim: g.dev}, Resources: []string{"db-password"}, FetchVerifierKeys: true,
		Attempts: 10, Backoff: 200 * time.Millisecond,
	})
	if err != nil {
		t.Fatalf("a genuine guest after the restart: %v", err)
	}
	t.Logf("the agent got its secret %s after the loss was detected", time.Since(start).Round(time.Millisecond))
	if string(got.Resources["db-password"]) != dbPassword {
		t.Fatalf("released %q", got.Resources["db-password"])
	}
	_, err = a.c.Attest(ctx, usedReq)
	wantUnavailable(t, "nonce used before the restart, once more", err)
}

// Redis stalled (SIGSTOP): an attestation is answered 503
// store_unavailable and /readyz 503 within a few store_timeouts, not after
// go-redis's 5 s read timeout and its retries; the write that timed out
// was sent once and never again; after SIGCONT its nonce is accepted at
// most once; the real agent, caught by a stall, gets through once it ends
// (its retry takes a fresh challenge).
func TestRedisStalledAnsweredWithinStoreTimeout(t *testing.T) {
	t.Parallel()
	srv := testkit.StartRedisServer(t)
	s := startServerAt(t, func(c *config.Config) { c.Redis, c.StoreTimeout = "redis://"+srv.Addr, time.Second }, nil)
	g := newGuest(t, sim.Options{})
	ctx := context.Background()
	if _, err := s.c.Attest(ctx, g.request(s.challenge(t), false)); err != nil {
		t.Fatal(err) // loads the script; the chip's certificates are cached
	}
	if err := srv.Client.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	stalled := g.request(s.challenge(t), false)

	srv.Stop()
	const bound = 4 * time.Second // store_timeout is 1 s, /readyz waits 900 ms; the CI machine may be busy
	start := time.Now()
	_, err := s.c.Attest(ctx, stalled)
	took := time.Since(start)
	t.Logf("attestation with Redis stalled answered in %s", took.Round(time.Millisecond))
	if took > bound {
		t.Errorf("attestation with Redis stalled answered after %s, want within %s", took, bound)
	}
	wantUnavailable(t, "Redis stalled", err)
	start = time.Now()
	var h v1.Health
	getJSON(t, s.url+v1.PathReadyz, http.StatusServiceUnavailable, &h)
	took = time.Since(start)
	t.Logf("/readyz with Redis stalled answered in %s", took.Round(time.Millisecond))
	if took > bound {
		t.Errorf("/readyz with Redis stalled answered after %s, want within %s", took, bound)
	}
	srv.Cont()

	// Whatever Redis had in its socket buffers it has run once the test's
	// own PING is answered; a retried write would add a second call.
	if err := srv.Client.Ping(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(300 * time.Millisecond)
	if n := singleUseWrites(t, srv); n > 1 {
		info, _ := srv.Client.Info(ctx, "commandstats").Result()
		t.Errorf("Redis ran %d single-use writes for one attestation, want at most 1: a write whose answer was lost was retried\n%s", n, info)
	}

	// Two judgements of the stalled nonce: at most one acceptance. A busy
	// machine may still time out a store call (503): that is no
	// judgement, so it is asked again, a bounded number of times.
	accepted, judged := 0, 0
	for try := 0; judged < 2 && try < 20; try++ {
		_, err := s.c.Attest(ctx, stalled)
		switch reasonOf(err) {
		case "":
			accepted++
			judged++
		case "nonce_replayed":
			judged++
		case "store_unavailable":
			time.Sleep(200 * time.Millisecond)
		default:
			t.Errorf("the stalled nonce after SIGCONT: %v, want accepted or nonce_replayed", err)
			judged++
		}
	}
	if accepted > 1 || judged < 2 {
		t.Errorf("the stalled nonce after SIGCONT: accepted %d times in %d judgements", accepted, judged)
	}
	waitReady(t, s.url, 30*time.Second)

	// The real agent, started while Redis is stalled, retries on 503 with a
	// fresh challenge and gets through once Redis answers again.
	srv.Stop()
	done := make(chan error, 1)
	failed := make(chan struct{}) // closed when an attempt has met the stall
	var once sync.Once
	go func() {
		_, err := agent.Fetch(ctx, agent.Options{Client: s.c, Device: agent.SimDevice{Sim: g.dev}, Attempts: 10, Backoff: 200 * time.Millisecond,
			Logf: func(string, ...any) { once.Do(func() { close(failed) }) }})
		done <- err
	}()
	select {
	case <-failed:
	case err := <-done:
		t.Fatalf("the agent finished while Redis was stalled: %v", err)
	case <-time.After(60 * time.Second):
		t.Fatal("no attempt of the agent failed in 60 s of a Redis stall")
	}
	srv.Cont()
	if err := <-done; err != nil {
		t.Fatalf("the agent across a stall: %v", err)
	}
}

// singleUseWrites is how many times Redis ran a single-use write since
// the last CONFIG RESETSTAT: the SET of a record, which each run of the
// single-use script does once past its checks (the commands a script calls
// count as well; the connection check and the probe run no SET).
func singleUseWrites(t *testing.T, srv *testkit.Redis) int {
	t.Helper()
	return commandCalls(t, srv)["set"]
}

// commandCalls is how many times Redis ran each command since the last
// CONFIG RESETSTAT (INFO commandstats; a script's commands included).
func commandCalls(t *testing.T, srv *testkit.Redis) map[string]int {
	t.Helper()
	info, err := srv.Client.Info(context.Background(), "commandstats").Result()
	if err != nil {
		t.Fatal(err)
	}
	calls := map[string]int{}
	for _, line := range strings.Split(info, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":calls=")
		if !ok {
			continue
		}
		n, _, _ := strings.Cut(rest, ",")
		if calls[strings.TrimPrefix(name, "cmdstat_")], err = strconv.Atoi(n); err != nil {
			t.Fatalf("commandstats line %q", line)
		}
	}
	return calls
}

// Without Redis a verifier's records begin at its start: restarted with
// the same keys, it refuses the nonce and the token used before (503
// store_unavailable) instead of accepting them once more, and a guest with
// a fresh challenge gets through.
func TestRestartedVerifierRefusesEarlierRecords(t *testing.T) {
	t.Parallel()
	shared := sharedKeys(t, "")
	clock := testkit.NewClock(time.Now())
	before := startServerAt(t, shared, clock.Now)
	g := newGuest(t, sim.Options{})
	ctx := context.Background()
	req := g.request(before.challenge(t), false)
	resp, err := before.c.Attest(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := before.c.Release(ctx, resp.Token, []string{"db-password"}); err != nil {
		t.Fatal(err)
	}

	clock.Add(2 * time.Second)
	after := startServerAt(t, shared, clock.Now) // the same verifier, restarted
	_, err = after.c.Attest(ctx, req)
	wantUnavailable(t, "nonce used before the restart", err)
	_, err = after.c.Release(ctx, resp.Token, []string{"db-password"})
	wantUnavailable(t, "token used before the restart", err)
	tok := attestToken(t, after, g)
	if _, err := after.c.Release(ctx, tok, []string{"db-password"}); err != nil {
		t.Fatalf("a fresh flow after the restart: %v", err)
	}
}

// Shared key files without Redis (issue 21, item 11): nonces and tokens
// name the replica that issued them and only it accepts them, so that two
// replicas cannot each accept the same nonce or token once.
func TestSharedKeysWithoutRedisStayWithTheirReplica(t *testing.T) {
	t.Parallel()
	keys := sharedKeys(t, "")
	a, b := startServerAt(t, keys, nil), startServerAt(t, keys, nil)
	g := newGuest(t, sim.Options{})
	ctx := context.Background()
	n := a.challenge(t)
	_, err := b.c.Attest(ctx, g.request(n, false))
	wantUnavailable(t, "another replica's nonce", err)
	resp, err := a.c.Attest(ctx, g.request(n, false))
	if err != nil {
		t.Fatalf("the issuing replica: %v", err)
	}
	_, err = b.c.Release(ctx, resp.Token, []string{"db-password"})
	wantUnavailable(t, "another replica's token", err)
	if _, err := a.c.Release(ctx, resp.Token, []string{"db-password"}); err != nil {
		t.Fatalf("the issuing replica's release: %v", err)
	}
}

func newJSONLogger(s *server) *slog.Logger {
	return slog.New(slog.NewJSONHandler(lockedWriter{&s.logMu, s.logs}, nil))
}

// A single-use write whose answer is lost (the connection drops after
// Redis ran it) is never sent again: the guest gets 503 store_unavailable
// and Redis ran the write once. go-redis's default, three retries on a
// dropped connection, would run it again and could answer the genuine
// guest nonce_replayed.
func TestAmbiguousWriteNotRetried(t *testing.T) {
	t.Parallel()
	srv := testkit.StartRedisServer(t)
	p := newDroppingProxy(t, srv.Addr)
	s := startServerAt(t, func(c *config.Config) { c.Redis = "redis://" + p.addr }, nil)
	g := newGuest(t, sim.Options{})
	ctx := context.Background()
	if _, err := s.c.Attest(ctx, g.request(s.challenge(t), false)); err != nil {
		t.Fatal(err)
	}
	if err := srv.Client.ConfigResetStat(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	p.drop.Store(true)
	_, err := s.c.Attest(ctx, g.request(s.challenge(t), false))
	wantUnavailable(t, "answer lost", err)
	if n := singleUseWrites(t, srv); n != 1 {
		t.Errorf("Redis ran the single-use write %d times, want once", n)
	}
}

// droppingProxy relays TCP to a Redis server; once drop is set, it closes
// a client's connection instead of relaying the answer to a script call
// (EVALSHA or EVAL), after Redis ran it.
type droppingProxy struct {
	addr string
	drop atomic.Bool
}

func newDroppingProxy(t *testing.T, target string) *droppingProxy {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	p := &droppingProxy{addr: ln.Addr().String()}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go p.relay(c, target)
		}
	}()
	return p
}

func (p *droppingProxy) relay(c net.Conn, target string) {
	defer c.Close()
	r, err := net.Dial("tcp", target)
	if err != nil {
		return
	}
	defer r.Close()
	var script atomic.Bool // a script call was relayed on this connection
	go func() {
		buf := make([]byte, 32<<10)
		for {
			n, err := c.Read(buf)
			if n > 0 {
				if p.drop.Load() && bytes.Contains(bytes.ToLower(buf[:n]), []byte("eval")) {
					script.Store(true)
				}
				r.Write(buf[:n])
			}
			if err != nil {
				r.Close()
				return
			}
		}
	}()
	buf := make([]byte, 32<<10)
	for {
		n, err := r.Read(buf)
		if script.Load() {
			return // the answer is lost
		}
		if n > 0 {
			c.Write(buf[:n])
		}
		if err != nil {
			return
		}
	}
}

// waitReady waits until /readyz answers 200, at most for d: a busy machine
// may time out a store call or two after Redis resumes.
func waitReady(t *testing.T, url string, d time.Duration) {
	t.Helper()
	deadline := time.Now().Add(d)
	for {
		resp, err := http.Get(url + v1.PathReadyz)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("/readyz not 200 within %s (last: %v)", d, err)
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// SPEC "The store's cost": trustgate_store_up is the replica's own probe
// of its store, whether or not requests arrive. A replica that serves
// nothing sees Redis go (0) and come back (1) without one request; no
// attestation is refused meanwhile, so a count of 503s could not have
// told. Waits are for the state, bounded generously, never timed.
func TestStoreUpProbedWithoutRequests(t *testing.T) {
	t.Parallel()
	srv := testkit.StartRedisServer(t)
	s := startServerAt(t, func(c *config.Config) { c.Redis = "redis://" + srv.Addr }, nil)
	storeUp := func() string {
		for _, line := range strings.Split(scrapeMetrics(t, http.DefaultClient, s.url), "\n") {
			if v, ok := strings.CutPrefix(line, "trustgate_store_up "); ok {
				return v
			}
		}
		t.Fatal("/metrics has no trustgate_store_up")
		return ""
	}
	waitStoreUp := func(want string) {
		t.Helper()
		deadline := time.Now().Add(60 * time.Second)
		for storeUp() != want {
			if time.Now().After(deadline) {
				t.Fatalf("trustgate_store_up is %s, want %s", storeUp(), want)
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	waitStoreUp("1")
	srv.Kill()
	waitStoreUp("0")
	srv.Restart()
	waitStoreUp("1")
	if m := scrapeMetrics(t, http.DefaultClient, s.url); strings.Contains(m, `reason="store_unavailable"} 1`) {
		t.Error("a store_unavailable refusal was counted without any request")
	}
}
