package challenge

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustgate/trustgate/internal/testkit"
)

// Against a real redis-server: one success per id, however many replicas
// race for it, and the record expires with its time.
func TestRedisStore(t *testing.T) {
	t.Parallel()
	rdb := testkit.StartRedis(t)
	a, b := NewRedisStore(rdb, RedisOptions{}), NewRedisStore(rdb, RedisOptions{}) // two replicas
	ctx := context.Background()
	now := time.Now()
	if err := a.Init(ctx, now); err != nil {
		t.Fatal(err)
	}
	until := now.Add(time.Minute)

	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			first, err := s.Consume(ctx, "nonce:x", now, until)
			if err != nil {
				t.Error(err)
			}
			if first {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d replicas consumed the same id", wins.Load())
	}
	if first, err := b.Consume(ctx, "nonce:y", now, until); !first || err != nil {
		t.Fatalf("another id: %v, %v", first, err)
	}
	ttl := rdb.TTL(ctx, DefaultRedisPrefix+"nonce:x").Val()
	if ttl <= 50*time.Second || ttl > time.Minute {
		t.Errorf("record TTL %s, want about a minute", ttl)
	}
	// A record already past its time is still kept a second.
	if first, _ := a.Consume(ctx, "nonce:late", now, time.Now().Add(-time.Hour)); !first {
		t.Fatal("late record refused")
	}
	if ttl := rdb.TTL(ctx, DefaultRedisPrefix+"nonce:late").Val(); ttl <= 0 || ttl > time.Second {
		t.Errorf("late record TTL %s, want a second", ttl)
	}
	// The marker never expires.
	if ttl := rdb.TTL(ctx, DefaultRedisPrefix+"epoch").Val(); ttl != -1 {
		t.Errorf("marker TTL %s, want none", ttl)
	}

	rdb.Close()
	if _, err := a.Consume(ctx, "nonce:z", now, until); err == nil {
		t.Error("a closed Redis was not an error")
	}
}

// What Redis forgets, trustgate notices: after each way of losing records
// (a flush, a restart without data, a restart from an older snapshot as
// with RDB persistence), a record consumed before the loss and one issued
// before it but never consumed are both refused at another replica with
// ErrIssuedBeforeRecords, never accepted; the loss is logged once; a
// record issued from the new beginning is accepted once.
func TestRedisStoreRefusesRecordsIssuedBeforeALoss(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		before func(*testkit.Redis) // after Init, before the records are written
		loss   func(*testkit.Redis)
		cause  string
	}{
		{"flushed", nil, func(r *testkit.Redis) { r.Client.FlushAll(context.Background()) }, "marker is gone"},
		{"restarted empty", nil, (*testkit.Redis).Restart, "marker is gone"},
		{"restarted from an older snapshot", (*testkit.Redis).Snapshot, (*testkit.Redis).RestartFromSnapshot, "another Redis server process"},
	}
	for _, tc := range cases {
		for _, onConnect := range []bool{false, true} {
			t.Run(fmt.Sprintf("%s/connect check %v", tc.name, onConnect), func(t *testing.T) {
				t.Parallel()
				srv := testkit.StartRedisServer(t)
				var logs lockedBuffer
				log := slog.New(slog.NewTextHandler(&logs, nil))
				// Two replicas, each with its own client; with a
				// ConnectCheck, as a server has, the run_id is checked
				// per connection instead of per write.
				a, b := lossStore(t, srv, log, onConnect), lossStore(t, srv, log, onConnect)
				testLoss(t, srv, &logs, a, b, tc.before, tc.loss, tc.cause)
			})
		}
	}
}

// lossStore is a store of its own client of srv, with a ConnectCheck when
// onConnect is set.
func lossStore(t *testing.T, srv *testkit.Redis, log *slog.Logger, onConnect bool) *RedisStore {
	t.Helper()
	o := &redis.Options{Addr: srv.Addr, MaxRetries: -1, ContextTimeoutEnabled: true}
	var k *ConnectCheck
	if onConnect {
		k = &ConnectCheck{}
		o.OnConnect = k.OnConnect
	}
	c := redis.NewClient(o)
	t.Cleanup(func() { c.Close() })
	return NewRedisStore(c, RedisOptions{Logger: log, Connect: k})
}

// testLoss consumes a record at a, loses it with loss, and checks that b
// refuses it (see TestRedisStoreRefusesRecordsIssuedBeforeALoss).
func testLoss(t *testing.T, srv *testkit.Redis, logs *lockedBuffer, a, b *RedisStore, before, loss func(*testkit.Redis), cause string) {
	t.Helper()
	ctx := context.Background()
	start := time.Now()
	if err := a.Init(ctx, start); err != nil {
		t.Fatal(err)
	}
	if before != nil {
		before(srv)
	}
	until := start.Add(time.Minute)
	if first, err := a.Consume(ctx, "used", start, until); !first || err != nil {
		t.Fatalf("before the loss: %v, %v", first, err)
	}
	loss(srv)

	for _, id := range []string{"used", "used", "issued before, unused"} {
		first, err := b.Consume(ctx, id, start, until)
		if first || !errors.Is(err, ErrIssuedBeforeRecords) {
			t.Fatalf("%s, after the loss: first %v, %v; want ErrIssuedBeforeRecords", id, first, err)
		}
	}
	if n := strings.Count(logs.String(), "may have lost records"); n != 1 || !strings.Contains(logs.String(), cause) {
		t.Fatalf("%d loss warnings, want 1 saying %q:\n%s", n, cause, logs.String())
	}
	ms, err := srv.Client.HGet(ctx, DefaultRedisPrefix+"epoch", "from").Result()
	if err != nil {
		t.Fatal(err)
	}
	fromMs, _ := strconv.ParseInt(ms, 10, 64)
	from := time.UnixMilli(fromMs)
	if !from.After(start) {
		t.Fatalf("records begin at %v, not after the first record (%v)", from, start)
	}
	for _, want := range []bool{true, false} {
		if first, err := a.Consume(ctx, "new", from, from.Add(time.Minute)); first != want || err != nil {
			t.Fatalf("issued at the new beginning: first %v, %v; want %v", first, err, want)
		}
	}
}

// A record stamped further ahead of Redis's clock than the margin is
// refused: its issuer's clock is wrong, and the rule that makes a loss
// visible assumes it is not.
func TestRedisStoreRefusesRecordsFromTheFuture(t *testing.T) {
	t.Parallel()
	rdb := testkit.StartRedis(t)
	var logs lockedBuffer
	s := NewRedisStore(rdb, RedisOptions{ClockMargin: 2 * time.Second, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx := context.Background()
	now := time.Now()
	if err := s.Init(ctx, now); err != nil {
		t.Fatal(err)
	}
	if first, err := s.Consume(ctx, "ahead", now.Add(time.Minute), now.Add(2*time.Minute)); first || err == nil || errors.Is(err, ErrIssuedBeforeRecords) {
		t.Fatalf("a minute ahead: first %v, %v; want a clock error", first, err)
	}
	if !strings.Contains(logs.String(), "ahead of Redis's clock") {
		t.Fatalf("no clock warning:\n%s", logs.String())
	}
	if first, err := s.Consume(ctx, "within", now.Add(time.Second), now.Add(time.Minute)); !first || err != nil {
		t.Fatalf("a second ahead, within the margin: %v, %v", first, err)
	}
}

type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

// A Redis that evicts keys when full could drop records unseen: Init says
// so.
func TestRedisStoreWarnsOfEviction(t *testing.T) {
	t.Parallel()
	rdb := testkit.StartRedis(t)
	ctx := context.Background()
	for _, policy := range []string{"noeviction", "volatile-lru"} {
		if err := rdb.ConfigSet(ctx, "maxmemory", "100mb").Err(); err != nil {
			t.Fatal(err)
		}
		if err := rdb.ConfigSet(ctx, "maxmemory-policy", policy).Err(); err != nil {
			t.Fatal(err)
		}
		var logs lockedBuffer
		s := NewRedisStore(rdb, RedisOptions{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
		if err := s.Init(ctx, time.Now()); err != nil {
			t.Fatal(err)
		}
		if warned := strings.Contains(logs.String(), "evicts keys"); warned != (policy != "noeviction") {
			t.Errorf("maxmemory-policy %s: warned %v\n%s", policy, warned, logs.String())
		}
	}
}

// The single-use script (TIME, INFO server, HMGET, SET NX) against a bare
// SET NX, one call at a time over loopback.
func BenchmarkRedisStoreConsume(b *testing.B) {
	rdb := testkit.StartRedis(b)
	s := NewRedisStore(rdb, RedisOptions{})
	ctx := context.Background()
	now := time.Now()
	if err := s.Init(ctx, now); err != nil {
		b.Fatal(err)
	}
	for i := 0; b.Loop(); i++ {
		if first, err := s.Consume(ctx, "b:"+strconv.Itoa(i), now, now.Add(time.Minute)); !first || err != nil {
			b.Fatal(first, err)
		}
	}
}

func BenchmarkRedisBareSetNX(b *testing.B) {
	rdb := testkit.StartRedis(b)
	ctx := context.Background()
	for i := 0; b.Loop(); i++ {
		if ok, err := rdb.SetNX(ctx, "b:"+strconv.Itoa(i), 1, time.Minute).Result(); !ok || err != nil {
			b.Fatal(ok, err)
		}
	}
}

// SPEC "Redis high availability": with a replica connected to the
// primary, a first use counts only once the replica has it (WAIT on the
// connection that wrote). A stalled replica (SIGSTOP: still connected,
// acknowledging nothing) makes the first use ErrNotReplicated within the
// store timeout, not a success; the write stands, so the same id is a
// replay once the replica is back, and a new id is accepted again. A
// standalone Redis (no replica; TestRedisStore) is never waited for.
func TestRedisStoreWaitsForAReplica(t *testing.T) {
	t.Parallel()
	primary, replica := testkit.StartRedisReplicated(t)
	rdb := redis.NewClient(&redis.Options{Addr: primary.Addr, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { rdb.Close() })
	// 2 s: a replica on a busy 2-core machine may take more than half a
	// second to acknowledge.
	s := NewRedisStore(rdb, RedisOptions{Timeout: 2 * time.Second})
	ctx := context.Background()
	now := time.Now()
	if err := s.Init(ctx, now); err != nil {
		t.Fatal(err)
	}
	until := now.Add(time.Minute)
	if first, err := s.Consume(ctx, "nonce:a", now, until); !first || err != nil {
		t.Fatalf("with the replica in sync: %v, %v", first, err)
	}
	if n, _ := replica.Client.Exists(ctx, DefaultRedisPrefix+"nonce:a").Result(); n != 1 {
		t.Fatal("a first use was answered before the replica had it")
	}

	replica.Stop()
	start := time.Now()
	first, err := s.Consume(ctx, "nonce:b", now, until)
	took := time.Since(start)
	replica.Cont()
	if first || !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("with the replica stalled: %v, %v; want ErrNotReplicated", first, err)
	}
	if took > 10*time.Second {
		t.Errorf("answered after %s, want within the store timeout (2s) and a margin", took)
	}
	replica.WaitInSync()
	if first, err := s.Consume(ctx, "nonce:b", now, until); first || err != nil {
		t.Errorf("the unacknowledged id again: %v, %v; want a replay (the write stands)", first, err)
	}
	if first, err := s.Consume(ctx, "nonce:c", now, until); !first || err != nil {
		t.Errorf("a new id with the replica back: %v, %v", first, err)
	}
}

// SPEC "Redis high availability" over Redis Cluster (one primary holding
// every slot, one replica): the store's keys carry a hash tag, so that the
// marker and a record share the script's slot (without it Redis refuses
// the script, CROSSSLOT), and a first use waits for the replica as on a
// standalone primary.
func TestRedisStoreOverCluster(t *testing.T) {
	t.Parallel()
	primary, replica, _ := testkit.StartRedisCluster(t)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{primary.Addr}, MaxRetries: -1, ContextTimeoutEnabled: true})
	t.Cleanup(func() { cc.Close() })
	ctx := context.Background()
	now := time.Now()
	until := now.Add(time.Minute)

	untagged := NewRedisStore(cc, RedisOptions{Prefix: DefaultRedisPrefix})
	if _, err := untagged.Consume(ctx, "nonce:x", now, until); err == nil || !strings.Contains(err.Error(), "CROSSSLOT") {
		t.Errorf("without a hash tag: %v, want CROSSSLOT", err)
	}

	s := NewRedisStore(cc, RedisOptions{Timeout: 2 * time.Second})
	if err := s.Init(ctx, now); err != nil {
		t.Fatal(err)
	}
	if first, err := s.Consume(ctx, "nonce:a", now, until); !first || err != nil {
		t.Fatalf("first use: %v, %v", first, err)
	}
	rc := replica.Client.Conn() // a cluster replica answers reads after READONLY
	defer rc.Close()
	if err := rc.ReadOnly(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if n, err := rc.Exists(ctx, ClusterRedisPrefix+"nonce:a").Result(); n != 1 {
		t.Fatalf("a first use was answered before the replica had it (%v)", err)
	}
	if first, err := s.Consume(ctx, "nonce:a", now, until); first || err != nil {
		t.Errorf("a replay: %v, %v", first, err)
	}
	replica.Stop()
	first, err := s.Consume(ctx, "nonce:b", now, until)
	replica.Cont()
	if first || !errors.Is(err, ErrNotReplicated) {
		t.Fatalf("with the replica stalled: %v, %v; want ErrNotReplicated", first, err)
	}
	replica.WaitInSync()
	if first, err := s.Consume(ctx, "nonce:c", now, until); !first || err != nil {
		t.Errorf("a new id with the replica back: %v, %v", first, err)
	}
}

// With a ConnectCheck (as a server has), a write is one script that reads
// no INFO: the run_id and the replica count are read once per connection.
// Counted by Redis itself (INFO commandstats), not timed.
func TestConnectCheckKeepsINFOOffTheWrites(t *testing.T) {
	t.Parallel()
	srv := testkit.StartRedisServer(t)
	s := lossStore(t, srv, nil, true)
	ctx := context.Background()
	now := time.Now()
	if err := s.Init(ctx, now); err != nil {
		t.Fatal(err)
	}
	// stats reads INFO's and scripts' calls in one INFO.
	stats := func() (infos, scripts int64) {
		info := srv.Client.Info(ctx, "commandstats").Val()
		stat := func(cmd string) int64 {
			_, rest, ok := strings.Cut(info, "cmdstat_"+cmd+":calls=")
			if !ok {
				return 0
			}
			n, _ := strconv.ParseInt(rest[:strings.IndexByte(rest, ',')], 10, 64)
			return n
		}
		return stat("info"), stat("evalsha") + stat("eval")
	}
	infos, evals := stats()
	const writes = 20
	for i := range writes {
		if first, err := s.Consume(ctx, fmt.Sprint("nonce:", i), now, now.Add(time.Minute)); !first || err != nil {
			t.Fatalf("write %d: %v, %v", i, first, err)
		}
	}
	infos2, evals2 := stats()
	// One INFO is the first reading of commandstats itself.
	if d := infos2 - infos; d > 1 {
		t.Errorf("%d INFO calls for %d writes, want none", d-1, writes)
	}
	if d := evals2 - evals; d != writes {
		t.Errorf("%d scripts for %d writes, want one each", d, writes)
	}
}
