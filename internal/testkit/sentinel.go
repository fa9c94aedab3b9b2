package testkit

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SentinelMaster is the name the sentinels of StartRedisHA give the
// primary.
const SentinelMaster = "tgprimary"

// RedisHA is a Redis primary with one replica, watched by three sentinels
// (quorum 2, a primary is down after 1 s without an answer), all private
// redis-server and redis-sentinel processes on loopback, killed at cleanup.
type RedisHA struct {
	Primary, Replica *Redis
	// Sentinels are the sentinels' host:port.
	Sentinels []string
	// URL is the redis+sentinel:// URL of the primary.
	URL string

	t testing.TB
}

// StartRedisHA starts a primary, its replica (in sync when it returns) and
// three sentinels that know both and each other. Without redis-sentinel on
// PATH the test fails when TRUSTGATE_TEST_REQUIRE_REDIS is set and is
// skipped otherwise.
func StartRedisHA(t testing.TB) *RedisHA {
	t.Helper()
	bin, err := exec.LookPath("redis-sentinel")
	if err != nil {
		if os.Getenv("TRUSTGATE_TEST_REQUIRE_REDIS") != "" {
			t.Fatal("redis-sentinel is not on PATH and TRUSTGATE_TEST_REQUIRE_REDIS is set")
		}
		t.Skip("redis-sentinel is not on PATH (scripts/test installs it)")
	}
	h := &RedisHA{t: t}
	h.Primary, h.Replica = StartRedisReplicated(t)
	for i := range 3 {
		h.Sentinels = append(h.Sentinels, h.startSentinel(bin, i))
	}
	for _, s := range h.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: s, MaxRetries: -1})
		waitFor(t, "sentinel "+s+" to know the replica and the other sentinels", func() bool {
			m, err := c.Master(context.Background(), SentinelMaster).Result()
			return err == nil && m["num-other-sentinels"] == "2" && m["num-slaves"] == "1"
		})
		c.Close()
	}
	h.URL = fmt.Sprintf("redis+sentinel://%s/%s", strings.Join(h.Sentinels, ","), SentinelMaster)
	return h
}

// StartRedisReplicated starts a primary and its replica, in sync when it
// returns (as StartRedisServer, which see).
func StartRedisReplicated(t testing.TB) (primary, replica *Redis) {
	t.Helper()
	primary = startRedisServer(t, "--repl-diskless-sync-delay", "0")
	replica = startRedisServer(t, "--replicaof", "127.0.0.1", primary.port, "--repl-diskless-sync-delay", "0")
	replica.WaitInSync()
	return primary, replica
}

// WaitInSync waits (up to 30 s) until a replica's link to its primary is
// up.
func (r *Redis) WaitInSync() {
	r.t.Helper()
	waitFor(r.t, "the replica in sync", func() bool {
		info, err := r.Client.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "master_link_status:up")
	})
}

func (h *RedisHA) startSentinel(bin string, i int) string {
	t := h.t
	t.Helper()
	dir := t.TempDir()
	for try := 0; try < 5; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		conf := filepath.Join(dir, fmt.Sprintf("sentinel-%d.conf", try))
		body := fmt.Sprintf("port %s\nbind 127.0.0.1\ndir %s\n"+
			"sentinel monitor %s 127.0.0.1 %s 2\n"+
			"sentinel down-after-milliseconds %[3]s 1000\n"+
			"sentinel failover-timeout %[3]s 10000\n"+
			"sentinel parallel-syncs %[3]s 1\n", port, dir, SentinelMaster, h.Primary.port)
		if err := os.WriteFile(conf, []byte(body), 0o600); err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(bin, conf)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		t.Cleanup(func() { cmd.Process.Kill(); <-exited })
		addr := net.JoinHostPort("127.0.0.1", port)
		c := redis.NewSentinelClient(&redis.Options{Addr: addr, MaxRetries: -1})
		up := false
		for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline) && !up; {
			select {
			case <-exited:
				deadline = time.Time{} // the port was taken
			case <-time.After(20 * time.Millisecond):
				up = c.Ping(context.Background()).Err() == nil
			}
		}
		c.Close()
		if up {
			return addr
		}
		cmd.Process.Kill()
	}
	t.Fatalf("sentinel %d did not start", i)
	return ""
}

// WaitFailover waits (up to 30 s) until the sentinels name the replica as
// the primary and it says so itself.
func (h *RedisHA) WaitFailover() {
	h.t.Helper()
	c := redis.NewSentinelClient(&redis.Options{Addr: h.Sentinels[0], MaxRetries: -1})
	defer c.Close()
	waitFor(h.t, "the replica promoted", func() bool {
		a, err := c.GetMasterAddrByName(context.Background(), SentinelMaster).Result()
		if err != nil || len(a) != 2 || a[1] != h.Replica.port {
			return false
		}
		info, err := h.Replica.Client.Info(context.Background(), "replication").Result()
		return err == nil && strings.Contains(info, "role:master")
	})
}

// waitFor polls cond every 50 ms for up to 30 s and fails the test if it
// never holds.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("waited 30 s for %s", what)
}

// StartRedisCluster starts a Redis Cluster of one primary holding every
// slot and its replica, in sync when it returns, and returns both and the
// redis+cluster:// URL of the primary (as StartRedisServer, which see).
func StartRedisCluster(t testing.TB) (primary, replica *Redis, url string) {
	t.Helper()
	args := []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf", "--cluster-node-timeout", "5000",
		"--repl-diskless-sync-delay", "0"}
	primary, replica = startRedisServer(t, args...), startRedisServer(t, args...)
	ctx := context.Background()
	if err := primary.Client.ClusterAddSlotsRange(ctx, 0, 16383).Err(); err != nil {
		t.Fatalf("CLUSTER ADDSLOTSRANGE: %v", err)
	}
	if err := replica.Client.ClusterMeet(ctx, "127.0.0.1", primary.port).Err(); err != nil {
		t.Fatalf("CLUSTER MEET: %v", err)
	}
	id, err := primary.Client.ClusterMyID(ctx).Result()
	if err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the replica to know the primary", func() bool {
		return replica.Client.ClusterReplicate(ctx, id).Err() == nil
	})
	replica.WaitInSync()
	waitFor(t, "the cluster ok", func() bool {
		info, err := primary.Client.ClusterInfo(ctx).Result()
		return err == nil && strings.Contains(info, "cluster_state:ok")
	})
	return primary, replica, "redis+cluster://" + primary.Addr
}
