package deploy

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/hex"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustgate/trustgate/client"
	"github.com/trustgate/trustgate/internal/agent"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/testkit"
)

// Across hosts (issue 14 §5), between the project's own containers on a
// private Docker network: three verifier replicas (the image, --dev-simulator)
// and Redis (the host's redis-server, FROM scratch). Redis is on an
// --internal network of its own ("back"); the replicas are on it and on a
// second one ("front") through which the test reaches them.
//
// A --dev-simulator verifier listens on loopback only (the product's rule),
// so a test-only TCP relay (internal/testkit/tcprelay) runs in each
// replica's network namespace (--network container:REPLICA) and the replica
// publishes the relay's port on the host's 127.0.0.1. The guests are the
// real agent code (internal/agent, simulated device) in the test process,
// behind a load-balancer stand-in: round robin over the replicas whose
// /readyz answers 200 (polled every 100 ms), no retry of its own; the agent
// retries the whole flow (a new challenge) on 503 and network errors.
//
//   - cut off from Redis (docker network disconnect of "back"): the replica
//     answers 503 store_unavailable and /readyz 503 while the others serve;
//     reconnected, it serves again;
//   - a replica killed (SIGKILL) under load: every guest gets its secret
//     from the others; a nonce and a token the killed replica issued are
//     honoured by the others; nothing accepted is accepted again;
//   - a rolling restart (docker stop: SIGTERM, shutdown_delay, then start;
//     one replica at a time) under load: no guest is refused.
//
// After each load, every accepted attestation request and every release is
// sent again to each replica: none is accepted.
func TestFleetAcrossContainers(t *testing.T) {
	t.Parallel()
	f := startFleet(t)

	t.Run("replica cut off from Redis fails closed and recovers", func(t *testing.T) {
		f.d.Run("network", "disconnect", f.name+"-back", f.replica(0))
		if code := waitStatus(t, f.urls[0]+"/readyz", http.StatusServiceUnavailable); code != http.StatusServiceUnavailable {
			t.Fatalf("cut off from Redis, /readyz is %d", code)
		}
		_, err := f.fetch(context.Background(), f.direct(0), 1)
		var ae *client.APIError
		if !errors.As(err, &ae) || ae.Status != http.StatusServiceUnavailable || ae.Reason != "store_unavailable" {
			t.Errorf("a guest at the replica cut off: %v, want 503 store_unavailable", err)
		}
		// The others serve, and the balancer no longer sends guests to it.
		for range 6 {
			if _, err := f.fetch(context.Background(), f.balanced(), 10); err != nil {
				t.Errorf("a guest of the fleet while one replica is cut off: %v", err)
			}
		}
		f.d.Run("network", "connect", "--alias", "verifier-1", f.name+"-back", f.replica(0))
		if code := waitStatus(t, f.urls[0]+"/readyz", http.StatusOK); code != http.StatusOK {
			t.Fatalf("reconnected, /readyz is %d", code)
		}
		if _, err := f.fetch(context.Background(), f.direct(0), 5); err != nil {
			t.Errorf("a guest at the reconnected replica: %v", err)
		}
		f.checkNoReplay(t)
	})

	t.Run("replica killed under load loses nothing", func(t *testing.T) {
		// What replica 2 issued before it dies: a challenge (its guest has
		// the report ready) and a token not yet used.
		ctx := context.Background()
		s, err := sim.New(sim.Options{})
		if err != nil {
			t.Fatal(err)
		}
		pending, err := agent.Prepare(ctx, f.direct(1), agent.SimDevice{Sim: s})
		if err != nil {
			t.Fatal(err)
		}
		issued, err := agent.Attest(ctx, f.direct(1), agent.SimDevice{Sim: s})
		if err != nil {
			t.Fatal(err)
		}
		l := f.load(6)
		l.waitServed(t, 10)
		f.d.Run("kill", f.replica(1))
		killedAt := l.served.Load()
		if _, err := f.direct(2).Attest(ctx, pending.Request); err != nil {
			t.Errorf("a nonce of the killed replica, at another: %v", err)
		}
		if _, err := f.direct(0).Release(ctx, issued.Token, []string{"db-password"}); err != nil {
			t.Errorf("a token of the killed replica, at another: %v", err)
		}
		l.waitServed(t, killedAt+30)
		l.stop(t)
		t.Logf("killed replica 2 after %d guests; %d guests served in all, %d flows retried", killedAt, l.served.Load(), l.retried.Load())
		f.restart(t, 1) // and then it too refuses what the others accepted
		f.checkNoReplay(t)
	})

	t.Run("rolling restart under load refuses no guest", func(t *testing.T) {
		l := f.load(6)
		l.waitServed(t, 10)
		for i := range f.urls {
			start := time.Now()
			f.d.Run("stop", "-t", "20", f.replica(i)) // SIGTERM: shutdown_delay, drain, exit
			if code := f.d.Run("inspect", "-f", "{{.State.ExitCode}}", f.replica(i)); code != "0" {
				t.Errorf("replica %d exited %s after SIGTERM, want 0 (not killed at the stop timeout)", i+1, code)
			}
			f.restart(t, i)
			t.Logf("replica %d restarted in %s", i+1, time.Since(start).Round(100*time.Millisecond))
			l.waitServed(t, l.served.Load()+10)
		}
		l.stop(t)
		t.Logf("%d guests served across the rolling restart, %d flows retried", l.served.Load(), l.retried.Load())
		f.checkNoReplay(t)
	})
}

type fleet struct {
	t      *testing.T
	d      *testkit.Docker
	name   string // of the containers and networks
	img    string
	dir    string // configuration, mounted read-only at /cfg
	relay  string // directory holding tcprelay
	user   string // uid:gid the containers run as (the owner of dir)
	ports  []int
	urls   []string
	bal    *balancer
	attest [][]byte // accepted attestation requests
	rel    []recordedRelease
	mu     sync.Mutex
}

type recordedRelease struct {
	auth string
	body []byte
}

func (f *fleet) replica(i int) string { return fmt.Sprintf("%s-%d", f.name, i+1) }

func startFleet(t *testing.T) *fleet {
	d := testkit.RequireDocker(t)
	img := d.Image()
	if _, err := exec.LookPath("redis-server"); err != nil {
		t.Fatal("redis-server is needed: the fleet's Redis image is built from it")
	}
	f := &fleet{t: t, d: d, img: img, dir: t.TempDir(), relay: t.TempDir(),
		name: fmt.Sprintf("tgfleet-%d-%d", os.Getpid(), time.Now().UnixNano()%100000),
		user: fmt.Sprintf("%d:%d", os.Getuid(), os.Getgid())}
	f.writeConfig()
	root, err := testkit.RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	build := exec.Command("go", "build", "-o", f.relay, "./internal/testkit/tcprelay")
	build.Dir, build.Env = root, append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building tcprelay: %v\n%s", err, out)
	}
	redisImg := buildRedisImage(t, d)

	t.Cleanup(func() {
		if ids, _ := d.Try("ps", "-aq", "--filter", "name=^"+f.name+"-"); ids != "" {
			d.Try(append([]string{"rm", "-f", "-v"}, strings.Fields(ids)...)...)
		}
		d.Try("network", "rm", f.name+"-front", f.name+"-back")
	})
	d.Run("network", "create", f.name+"-front")
	d.Run("network", "create", "--internal", f.name+"-back")
	d.Run("run", "-d", "--name", f.name+"-redis", "--network", f.name+"-back", "--network-alias", "redis",
		"--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges", redisImg,
		"--bind", "0.0.0.0", "--port", "6379", "--protected-mode", "no", "--dir", "/data", "--save", "", "--appendonly", "no")

	base := freePorts(t, 3)
	for i := range 3 {
		f.ports = append(f.ports, base+i)
		f.urls = append(f.urls, fmt.Sprintf("http://127.0.0.1:%d", base+i))
		// Created on "front" (which publishes the port), joined to
		// "back" before it starts, so that Redis answers its first call.
		d.Run("create", "--name", f.replica(i), "--network", f.name+"-front",
			"-p", fmt.Sprintf("127.0.0.1:%d:9080", base+i),
			"--user", f.user, "--read-only", "--cap-drop", "ALL", "--security-opt", "no-new-privileges",
			"--tmpfs", "/cache:rw,mode=0700,uid="+strings.Split(f.user, ":")[0],
			"-v", f.dir+":/cfg:ro", img,
			"serve", "--listen", "127.0.0.1:8080", "--dev-simulator", "--offline",
			"--redis", "redis://redis:6379/0", "--store-timeout", "1s",
			"--nonce-key-file", "/cfg/nonce.key", "--token-key-file", "/cfg/token.pem",
			"--reference-values", "/cfg/ref.yaml", "--resources", "/cfg/res",
			"--cert-cache-dir", "/cache", "--state-dir", "/cache/state", "--shutdown-delay", "2s")
		d.Run("network", "connect", "--alias", fmt.Sprintf("verifier-%d", i+1), f.name+"-back", f.replica(i))
		d.Run("start", f.replica(i))
		f.startRelay(i)
	}
	for i, u := range f.urls {
		if code := waitStatus(t, u+"/readyz", http.StatusOK); code != http.StatusOK {
			logs, _ := d.Try("logs", f.replica(i))
			t.Fatalf("replica %d: /readyz %d\n%s", i+1, code, logs)
		}
	}
	f.bal = newBalancer(t, f)
	return f
}

// writeConfig writes the replicas' shared keys, reference values (the
// simulator's default measurement, approved with one resource) and
// resources, owner-only.
func (f *fleet) writeConfig() {
	t := f.t
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	nk := make([]byte, 32)
	rand.Read(nk)
	res := filepath.Join(f.dir, "res")
	if err := os.Mkdir(res, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, body := range map[string][]byte{
		"nonce.key":       []byte(hex.EncodeToString(nk)),
		"token.pem":       pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}),
		"ref.yaml":        fmt.Appendf(nil, "measurements:\n  - value: %q\n    label: build-1\n    resources: [db-password]\n", hex.EncodeToString(sim.DefaultMeasurement[:])),
		"res/db-password": []byte(fleetSecret),
	} {
		if err := os.WriteFile(filepath.Join(f.dir, name), body, 0o600); err != nil {
			t.Fatal(err)
		}
	}
}

const fleetSecret = "s3cret-of-the-fleet"

// buildRedisImage builds a FROM scratch image of the host's redis-server
// and its libraries (as deploy/local/up.sh does, under a tag of its own).
func buildRedisImage(t *testing.T, d *testkit.Docker) string {
	t.Helper()
	bin, _ := exec.LookPath("redis-server")
	ctx := t.TempDir()
	copyFile := func(src, dst string) {
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copyFile(bin, filepath.Join(ctx, "rootfs/usr/bin/redis-server"))
	out, err := exec.Command("ldd", bin).Output()
	if err != nil {
		t.Fatalf("ldd %s: %v", bin, err)
	}
	for _, w := range strings.Fields(string(out)) {
		if strings.HasPrefix(w, "/") {
			copyFile(w, filepath.Join(ctx, "rootfs", w))
		}
	}
	if err := os.MkdirAll(filepath.Join(ctx, "data"), 0o755); err != nil {
		t.Fatal(err)
	}
	copyFile("local/redis.Dockerfile", filepath.Join(ctx, "Dockerfile"))
	return d.Build(fmt.Sprintf("trustgate-redis:fleet-test-%d", os.Getpid()), ctx)
}

// startRelay (re)starts replica i's relay, in its network namespace.
func (f *fleet) startRelay(i int) {
	f.d.Try("rm", "-f", "-v", f.replica(i)+"-relay")
	f.d.Run("run", "-d", "--name", f.replica(i)+"-relay", "--network", "container:"+f.replica(i),
		"--user", f.user, "--read-only", "--cap-drop", "ALL", "-v", f.relay+":/relay:ro",
		"--entrypoint", "/relay/tcprelay", f.img, "0.0.0.0:9080", "127.0.0.1:8080")
}

// restart starts a stopped (or killed) replica again, with a new relay,
// and waits until it is ready.
func (f *fleet) restart(t *testing.T, i int) {
	t.Helper()
	f.d.Try("rm", "-f", "-v", f.replica(i)+"-relay") // it held the old network namespace
	f.d.Run("start", f.replica(i))
	f.startRelay(i)
	if code := waitStatus(t, f.urls[i]+"/readyz", http.StatusOK); code != http.StatusOK {
		logs, _ := f.d.Try("logs", f.replica(i))
		t.Fatalf("replica %d restarted: /readyz %d\n%s", i+1, code, logs)
	}
}

// direct is a client of replica i alone; balanced one of the balancer.
func (f *fleet) direct(i int) *client.Client {
	return &client.Client{BaseURL: f.urls[i], HTTP: &http.Client{Transport: f.bal.recording(i), Timeout: 10 * time.Second}}
}

func (f *fleet) balanced() *client.Client {
	return &client.Client{BaseURL: "http://fleet.invalid", HTTP: &http.Client{Transport: f.bal, Timeout: 10 * time.Second}}
}

// fetch is one genuine guest: the agent's whole flow (challenge, attest,
// release of db-password), retried up to attempts times on 503 and network
// errors.
func (f *fleet) fetch(ctx context.Context, c *client.Client, attempts int) (*agent.Fetched, error) {
	s, err := sim.New(sim.Options{})
	if err != nil {
		return nil, err
	}
	got, err := agent.Fetch(ctx, agent.Options{Client: c, Device: agent.SimDevice{Sim: s}, Resources: []string{"db-password"},
		FetchVerifierKeys: true, Attempts: attempts, Backoff: 100 * time.Millisecond, MaxRetryAfter: time.Second})
	if err == nil && string(got.Resources["db-password"]) != fleetSecret {
		return nil, fmt.Errorf("released %q", got.Resources["db-password"])
	}
	return got, err
}

// checkNoReplay sends every accepted attestation request and release again
// to each replica: none may be accepted.
func (f *fleet) checkNoReplay(t *testing.T) {
	t.Helper()
	f.mu.Lock()
	attests, rels := f.attest, f.rel
	f.attest, f.rel = nil, nil
	f.mu.Unlock()
	if len(attests) == 0 || len(rels) == 0 {
		t.Fatalf("%d attestations and %d releases recorded, want some", len(attests), len(rels))
	}
	reasons := map[string]int{}
	send := func(u, path, auth string, body []byte) {
		req, _ := http.NewRequest("POST", u+path, bytes.NewReader(body))
		req.Header.Set("Content-Type", "application/json")
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Errorf("replay at %s: %v", u, err)
			return
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode == http.StatusOK {
			t.Errorf("%s accepted again at %s", path, u)
		}
		reasons[fmt.Sprintf("%s %d %s", path, resp.StatusCode, reasonIn(b))]++
	}
	for _, u := range f.urls {
		for _, b := range attests {
			send(u, "/v1/attest", "", b)
		}
		for _, r := range rels {
			send(u, "/v1/release", r.auth, r.body)
		}
	}
	t.Logf("%d attestations and %d releases replayed at each replica: %v", len(attests), len(rels), reasons)
}

func reasonIn(b []byte) string {
	if i := bytes.Index(b, []byte(`"reason":"`)); i >= 0 {
		r := b[i+10:]
		if j := bytes.IndexByte(r, '"'); j >= 0 {
			return string(r[:j])
		}
	}
	return "?"
}

// balancer is the load-balancer stand-in: round robin over the replicas
// whose /readyz last answered 200; it records what was accepted.
type balancer struct {
	f     *fleet
	ready []atomic.Bool
	next  atomic.Uint32
	tr    *http.Transport
}

func newBalancer(t *testing.T, f *fleet) *balancer {
	b := &balancer{f: f, ready: make([]atomic.Bool, len(f.urls)), tr: &http.Transport{MaxIdleConnsPerHost: 16}}
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	t.Cleanup(func() { cancel(); wg.Wait(); b.tr.CloseIdleConnections() })
	probe := &http.Client{Timeout: time.Second}
	for i, u := range f.urls {
		b.ready[i].Store(true)
		wg.Go(func() {
			for {
				req, _ := http.NewRequestWithContext(ctx, "GET", u+"/readyz", nil)
				resp, err := probe.Do(req)
				ok := err == nil && resp.StatusCode == http.StatusOK
				if err == nil {
					resp.Body.Close()
				}
				b.ready[i].Store(ok)
				select {
				case <-ctx.Done():
					return
				case <-time.After(100 * time.Millisecond):
				}
			}
		})
	}
	return b
}

func (b *balancer) RoundTrip(req *http.Request) (*http.Response, error) {
	n := len(b.ready)
	start := int(b.next.Add(1))
	pick := start % n // none ready: try one anyway
	for k := range n {
		if i := (start + k) % n; b.ready[i].Load() {
			pick = i
			break
		}
	}
	return b.recording(pick).RoundTrip(req)
}

// recording sends to replica i and records what it accepted.
func (b *balancer) recording(i int) http.RoundTripper {
	return roundTripper(func(req *http.Request) (*http.Response, error) {
		u, _ := url.Parse(b.f.urls[i])
		var body []byte
		if req.Body != nil {
			body, _ = io.ReadAll(req.Body)
			req.Body.Close()
		}
		out := req.Clone(req.Context())
		out.URL.Scheme, out.URL.Host, out.Host = u.Scheme, u.Host, u.Host
		out.Body = io.NopCloser(bytes.NewReader(body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(body)), nil }
		resp, err := b.tr.RoundTrip(out)
		if err != nil || resp.StatusCode != http.StatusOK {
			return resp, err
		}
		b.f.mu.Lock()
		switch req.URL.Path {
		case "/v1/attest":
			b.f.attest = append(b.f.attest, body)
		case "/v1/release":
			b.f.rel = append(b.f.rel, recordedRelease{req.Header.Get("Authorization"), body})
		}
		b.f.mu.Unlock()
		return resp, nil
	})
}

type roundTripper func(*http.Request) (*http.Response, error)

func (f roundTripper) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

// load is guests in a loop through the balancer, each flow with up to 30
// attempts; every flow must end with the secret.
type load struct {
	served  atomic.Int64
	retried atomic.Int64
	cancel  context.CancelFunc
	wg      sync.WaitGroup
	mu      sync.Mutex
	errs    []error
}

// load starts workers guests, each running at most 200 flows.
func (f *fleet) load(workers int) *load {
	l := &load{}
	ctx, cancel := context.WithCancel(context.Background())
	l.cancel = cancel
	for range workers {
		l.wg.Go(func() {
			for range 200 {
				if ctx.Err() != nil {
					return
				}
				s, _ := sim.New(sim.Options{})
				got, err := agent.Fetch(context.Background(), agent.Options{Client: f.balanced(), Device: agent.SimDevice{Sim: s},
					Resources: []string{"db-password"}, FetchVerifierKeys: true, Attempts: 30, Backoff: 100 * time.Millisecond,
					MaxRetryAfter: time.Second, Logf: func(string, ...any) { l.retried.Add(1) }})
				if err == nil && string(got.Resources["db-password"]) != fleetSecret {
					err = fmt.Errorf("released %q", got.Resources["db-password"])
				}
				if err != nil {
					l.mu.Lock()
					l.errs = append(l.errs, err)
					l.mu.Unlock()
					continue
				}
				l.served.Add(1)
			}
		})
	}
	return l
}

// waitServed waits (up to 90 s) until n guests were served.
func (l *load) waitServed(t *testing.T, n int64) {
	t.Helper()
	for deadline := time.Now().Add(90 * time.Second); l.served.Load() < n; time.Sleep(20 * time.Millisecond) {
		if time.Now().After(deadline) {
			l.stop(t)
			t.Fatalf("waited 90 s for %d guests served, %d were", n, l.served.Load())
		}
	}
}

// stop ends the load, waits for the flows under way, and fails the test
// if any guest was refused or not served.
func (l *load) stop(t *testing.T) {
	t.Helper()
	l.cancel()
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, err := range l.errs {
		t.Errorf("a genuine guest not served: %v", err)
	}
	l.errs = nil
}
