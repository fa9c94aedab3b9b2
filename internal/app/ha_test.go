package app

import (
	"context"
	"net/http"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/agent"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/testkit"
)

// SPEC "Redis high availability", with Debian's redis-sentinel on
// loopback: one primary, one replica, three sentinels; two verifiers
// given the redis+sentinel:// URL. Guests attest and release under load,
// each accepted nonce and token replayed at once at the other verifier;
// the primary is killed mid-load and the replica promoted. No nonce or
// token is ever accepted twice (before, during or after the failover: the
// records issued before it are refused with 503, the promoted replica
// being another Redis process), and guests are served again once the
// failover completes (the agent, retrying on 503, gets its secret).
func TestSentinelFailoverAcceptsNoReplay(t *testing.T) {
	t.Parallel()
	ha := testkit.StartRedisHA(t)
	shared := sharedKeys(t, "")
	withHA := func(c *config.Config) { shared(c); c.Redis = ha.URL }
	servers := []*server{startServerAt(t, withHA, nil), startServerAt(t, withHA, nil)}
	ctx := context.Background()

	type used struct {
		req   v1.AttestRequest
		token string
	}
	var (
		mu       sync.Mutex
		accepted []used
		replays  atomic.Int32 // replays accepted: must stay 0
		before   atomic.Int32 // accepted before the kill
		after    atomic.Int32 // accepted after the failover completed
		failures atomic.Int32 // 503s and errors the guests retried
		phase    atomic.Int32 // 0 before the kill, 1 during, 2 after
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range 4 {
		g := newGuest(t, sim.Options{})
		wg.Go(func() {
			for i := w; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				s, other := servers[i%2], servers[(i+1)%2]
				ch, err := s.c.Challenge(ctx)
				if err != nil {
					failures.Add(1)
					continue
				}
				req := g.request(ch.Nonce, false)
				resp, err := s.c.Attest(ctx, req)
				if err != nil {
					if reasonOf(err) != "store_unavailable" {
						t.Errorf("a genuine guest refused: %v", err)
					}
					failures.Add(1)
					time.Sleep(50 * time.Millisecond)
					continue
				}
				p := phase.Load()
				if _, err := other.c.Attest(ctx, req); err == nil {
					replays.Add(1)
					t.Errorf("a nonce accepted twice (phase %d)", p)
				}
				if _, err := s.c.Release(ctx, resp.Token, []string{"db-password"}); err != nil {
					failures.Add(1)
					continue
				}
				if _, err := other.c.Release(ctx, resp.Token, []string{"db-password"}); err == nil {
					replays.Add(1)
					t.Errorf("a token released twice (phase %d)", p)
				}
				mu.Lock()
				accepted = append(accepted, used{req, resp.Token})
				mu.Unlock()
				switch p {
				case 0:
					before.Add(1)
				case 2:
					after.Add(1)
				}
			}
		})
	}
	waitUntil := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(60 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("waited 60 s for %s", what)
			}
		}
	}
	waitUntil("20 guests served before the kill", func() bool { return before.Load() >= 20 })
	phase.Store(1)
	killed := time.Now()
	ha.Primary.Kill()
	ha.WaitFailover()
	promoted := time.Since(killed)
	phase.Store(2)
	waitUntil("20 guests served after the failover", func() bool { return after.Load() >= 20 })
	close(stop)
	wg.Wait()
	t.Logf("replica promoted %s after the kill; %d guests served before, %d after; %d attempts retried",
		promoted.Round(time.Millisecond), before.Load(), after.Load(), failures.Load())

	// Every nonce and token accepted, once more at each verifier: none
	// is accepted again.
	for _, u := range accepted {
		for _, s := range servers {
			if _, err := s.c.Attest(ctx, u.req); err == nil {
				t.Fatal("a nonce accepted twice, after the load")
			}
			if _, err := s.c.Release(ctx, u.token, []string{"db-password"}); err == nil {
				t.Fatal("a token released twice, after the load")
			}
		}
	}
	// The real agent, after the failover, gets its secret.
	g := newGuest(t, sim.Options{})
	got, err := agent.Fetch(ctx, agent.Options{
		Client: servers[1].c, Device: agent.SimDevice{Sim: g.dev}, Resources: []string{"db-password"}, FetchVerifierKeys: true,
		Attempts: 10, Backoff: 200 * time.Millisecond,
	})
	if err != nil || string(got.Resources["db-password"]) != dbPassword {
		t.Fatalf("the agent after the failover: %v", err)
	}
	if replays.Load() != 0 {
		t.Fatalf("%d replays accepted", replays.Load())
	}
}

// A verifier given a redis+cluster:// URL (one primary with every slot and
// a replica): ready, a guest gets its secret, and the same nonce and token
// are refused at a second verifier of the same cluster.
func TestClusterURLServes(t *testing.T) {
	t.Parallel()
	_, _, url := testkit.StartRedisCluster(t)
	shared := sharedKeys(t, "")
	withCluster := func(c *config.Config) { shared(c); c.Redis = url }
	a, b := startServerAt(t, withCluster, nil), startServerAt(t, withCluster, nil)
	ctx := context.Background()
	var h v1.Health
	getJSON(t, a.url+v1.PathReadyz, http.StatusOK, &h)
	g := newGuest(t, sim.Options{})
	req := g.request(a.challenge(t), false)
	resp, err := a.c.Attest(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := a.c.Release(ctx, resp.Token, []string{"db-password"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.c.Attest(ctx, req); reasonOf(err) != "nonce_replayed" {
		t.Errorf("the nonce again at another verifier: %v, want nonce_replayed", err)
	}
	if _, err := b.c.Release(ctx, resp.Token, []string{"db-password"}); reasonOf(err) != "token_replayed" {
		t.Errorf("the token again at another verifier: %v, want token_replayed", err)
	}
}

// With a replica connected to the primary (a plain redis:// URL), a first
// use that no replica acknowledges within store_timeout is answered 503
// store_unavailable, not accepted; with the replica answering again, the
// agent (retrying on 503 with a new challenge) gets its secret.
func TestUnreplicatedUseIsUnavailable(t *testing.T) {
	t.Parallel()
	primary, replica := testkit.StartRedisReplicated(t)
	shared := sharedKeys(t, primary.Addr)
	s := startServerAt(t, func(c *config.Config) { shared(c); c.StoreTimeout = 2 * time.Second }, nil)
	g := newGuest(t, sim.Options{})
	ctx := context.Background()
	req := g.request(s.challenge(t), false)
	replica.Stop()
	_, err := s.c.Attest(ctx, req)
	replica.Cont()
	wantUnavailable(t, "a first use with the replica stalled", err)
	replica.WaitInSync()
	got, err := agent.Fetch(ctx, agent.Options{
		Client: s.c, Device: agent.SimDevice{Sim: g.dev}, Resources: []string{"db-password"}, FetchVerifierKeys: true,
		Attempts: 10, Backoff: 200 * time.Millisecond,
	})
	if err != nil || string(got.Resources["db-password"]) != dbPassword {
		t.Fatalf("the agent with the replica back: %v", err)
	}
}
