package challenge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix prefixes the keys of a RedisStore.
const DefaultRedisPrefix = "trustgate:used:"

// ClusterRedisPrefix is the prefix for a Redis Cluster: the hash tag puts
// the marker and every record in one slot, as the script needs. It is used
// only with Redis Cluster, which earlier versions did not support, so that
// no rolling upgrade ever mixes replicas writing under two prefixes (a
// replica under a new prefix would not see what one under the old prefix
// recorded).
const ClusterRedisPrefix = "{trustgate:used}:"

// ErrNotReplicated is a Store's answer when Redis recorded a first use but
// no replica acknowledged the write within the store timeout: a failover
// could forget it, so the outcome is store_unavailable (the record stands).
var ErrNotReplicated = errors.New("no Redis replica acknowledged the single-use record in time")

// DefaultStoreTimeout bounds one store call when RedisOptions.Timeout is 0.
const DefaultStoreTimeout = time.Second

// DefaultClockMargin is RedisOptions.ClockMargin when it is 0: how far the
// verifiers' clocks may be ahead of Redis's.
const DefaultClockMargin = time.Second

// RedisOptions configures a RedisStore. The zero value is usable.
type RedisOptions struct {
	// Prefix prefixes every key; "" means DefaultRedisPrefix, or
	// ClusterRedisPrefix over a *redis.ClusterClient. The marker of when
	// the records begin is Prefix+"epoch"; over a cluster, the prefix must
	// hold a hash tag, so that they share a slot.
	Prefix string
	// Timeout bounds each call (one round trip, or two when Redis has to
	// be sent the script again); 0 means DefaultStoreTimeout. The client
	// must not retry commands (go-redis MaxRetries -1) and must honour the
	// context's deadline (ContextTimeoutEnabled): a write whose answer was
	// lost may have been done, and doing it again would refuse its own
	// guest.
	Timeout time.Duration
	// ClockMargin is how far a verifier's clock may be ahead of Redis's:
	// a record stamped later than Redis's clock plus the margin is refused
	// (the outcome cannot be confirmed), and after a loss the records begin
	// at Redis's clock plus the margin. 0 means
	// DefaultClockMargin.
	ClockMargin time.Duration
	// Logger receives one warning per detected loss and, at most once a
	// minute, a warning about a clock ahead of Redis's; nil means none.
	Logger *slog.Logger
}

// RedisStore is a Store shared by every replica using the same Redis: a
// record is one key, created with SET NX and expiring with it, so that of
// several replicas consuming the same id at once exactly one succeeds.
//
// Every write is one Lua script, atomic in Redis, that also keeps the
// marker Prefix+"epoch" (a hash: "from", Unix ms, when the records begin;
// "run", the run_id of the Redis server process that holds them). In one
// step the script:
//
//  1. reads Redis's clock (TIME) and its run_id (INFO server);
//  2. if the marker is gone (the data was lost, or flushed) or names
//     another run_id (Redis restarted, whatever its persistence, or
//     another server took over), sets "from" to Redis's clock plus
//     ClockMargin and "run" to this run_id, and refuses the record
//     (ErrIssuedBeforeRecords): a loss is detected once, by the one write
//     that finds it;
//  3. refuses a record stamped more than ClockMargin after Redis's clock
//     (its issuer's clock is ahead; the outcome cannot be confirmed);
//  4. refuses a record issued before "from" (ErrIssuedBeforeRecords);
//  5. else SET NX PX the record's key until its expiry (at least a
//     second, so a clock skew between replicas cannot reopen it at once).
//  6. reports the number of replicas connected to the primary, so that a
//     first use is waited for (WAIT) when there are any: see Replication below.
//
// Why this holds across a loss: a record accepted before the loss was
// stamped at most ClockMargin after Redis's clock when it was written
// (rule 3), a time before the loss; after it, "from" is Redis's clock at
// the detection, a time after the loss, plus ClockMargin: the record's
// stamp is before "from", and it is refused. It relies on Redis's clock not going back across the restart by more
// than what separates the loss from its detection, and on nothing but a
// restart, a failover or a flush removing records (maxmemory-policy
// noeviction; nobody deletes Prefix keys). Init, at start, creates a
// missing marker without calling it a loss, so that a fresh deployment
// accepts its first records: a loss that no write saw before a verifier
// starts is then covered from that start on, to the second below, without
// the clock margin.
//
// Replication: a first use is counted only once a replica has it. The
// script reports the primary's connected replicas (INFO replication,
// connected_slaves) at the moment of the write; when there is at least
// one, the store sends WAIT 1 on the connection that wrote (WAIT counts
// that connection's writes only), bounded by what remains of Timeout, and
// fewer than one acknowledgement is ErrNotReplicated. A primary with no
// connected replica (a standalone Redis; a primary whose replicas are all
// down) is not waited for: a failover cannot then promote a server that
// lacks the record without also changing the run_id in the marker, which
// the next write detects as a loss (see above). The client must be a
// *redis.Client (standalone, or sentinel's failover client) or a
// *redis.ClusterClient: with any other, a write that needs WAIT is
// ErrNotReplicated.
type RedisStore struct {
	c        redis.UniversalClient
	prefix   string
	timeout  time.Duration
	margin   time.Duration
	log      *slog.Logger
	skewWarn atomic.Int64 // Unix seconds of the last clock warning
}

// NewRedisStore returns a RedisStore over c.
func NewRedisStore(c redis.UniversalClient, o RedisOptions) *RedisStore {
	if _, cluster := c.(*redis.ClusterClient); o.Prefix == "" && cluster {
		o.Prefix = ClusterRedisPrefix
	} else if o.Prefix == "" {
		o.Prefix = DefaultRedisPrefix
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultStoreTimeout
	}
	if o.ClockMargin <= 0 {
		o.ClockMargin = DefaultClockMargin
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return &RedisStore{c: c, prefix: o.Prefix, timeout: o.Timeout, margin: o.ClockMargin, log: o.Logger}
}

// consumeScript: KEYS[1] the marker, KEYS[2] the record (absent: the
// start-up check of Init); ARGV[1] the record's issue time (Init: the
// verifier's clock), Unix ms; ARGV[2] the record's lifetime, ms; ARGV[3]
// the clock margin, ms. Reply {outcome, from, redis now, marker existed,
// connected replicas}.
var consumeScript = redis.NewScript(`
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local run = string.match(redis.call('INFO', 'server'), 'run_id:(%x+)')
local replicas = tonumber(string.match(redis.call('INFO', 'replication'), 'connected_slaves:(%d+)')) or 0
local issued = tonumber(ARGV[1])
local margin = tonumber(ARGV[3])
local m = redis.call('HMGET', KEYS[1], 'from', 'run')
local from = tonumber(m[1])
if #KEYS == 1 and not from then
  from = issued - issued % 1000
  redis.call('HSET', KEYS[1], 'from', from, 'run', run)
  return {5, from, now, 0, replicas}
end
if not from or m[2] ~= run then
  local nf = now + margin
  local existed = 0
  if from then
    existed = 1
    if from > nf then nf = from end
  end
  redis.call('HSET', KEYS[1], 'from', nf, 'run', run)
  return {2, nf, now, existed, replicas}
end
if #KEYS == 1 then return {6, from, now, 1, replicas} end
if issued > now + margin then return {3, from, now, 1, replicas} end
if issued < from then return {4, from, now, 1, replicas} end
if redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then return {1, from, now, 1, replicas} end
return {0, from, now, 1, replicas}
`)

// Script outcomes.
const (
	outReplayed = 0
	outFirst    = 1
	outLost     = 2
	outAhead    = 3
	outBefore   = 4
	outCreated  = 5
	outOK       = 6
)

func (r *RedisStore) run(ctx context.Context, keys []string, issued time.Time, ttl time.Duration) (out int64, from, now time.Time, existed bool, err error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	// The write and its WAIT go over one connection: WAIT counts the
	// writes of the connection it is sent on.
	conn, err := r.conn(ctx, keys[0])
	if err != nil {
		r.reload()
		return 0, time.Time{}, time.Time{}, false, fmt.Errorf("redis single-use store: the primary of the records: %w", err)
	}
	var sc redis.Scripter = r.c
	if conn != nil {
		defer conn.Close()
		sc = conn
	}
	// Run sends EVALSHA and, only if Redis answers NOSCRIPT (nothing was
	// done), EVAL: never the same write twice.
	v, err := consumeScript.Run(ctx, sc, keys, issued.UnixMilli(), ttl.Milliseconds(), r.margin.Milliseconds()).Int64Slice()
	if err != nil {
		r.reload()
		return 0, time.Time{}, time.Time{}, false, fmt.Errorf("redis single-use script: %w", err)
	}
	if len(v) != 5 {
		return 0, time.Time{}, time.Time{}, false, fmt.Errorf("redis single-use script: %d values, want 5", len(v))
	}
	out, from, now, existed = v[0], time.UnixMilli(v[1]), time.UnixMilli(v[2]), v[3] == 1
	if out == outFirst && v[4] > 0 {
		if err := r.wait(ctx, conn); err != nil {
			return 0, from, now, existed, err
		}
	}
	return out, from, now, existed, nil
}

// conn returns a connection to the primary that holds key; nil when the
// client cannot give one (then a write that needs WAIT is
// ErrNotReplicated). A cluster client's own routing is never used for the
// write: it re-sends a command after a network error.
func (r *RedisStore) conn(ctx context.Context, key string) (*redis.Conn, error) {
	switch c := r.c.(type) {
	case *redis.Client:
		return c.Conn(), nil
	case *redis.ClusterClient:
		node, err := c.MasterForKey(ctx, key)
		if err != nil {
			return nil, err
		}
		return node.Conn(), nil
	}
	return nil, nil
}

// wait sends WAIT 1 on conn, bounded by what remains of ctx (less a
// little, so that Redis's answer arrives before the deadline).
func (r *RedisStore) wait(ctx context.Context, conn *redis.Conn) error {
	if conn == nil {
		return fmt.Errorf("redis: %w (a %T cannot send WAIT on the connection that wrote)", ErrNotReplicated, r.c)
	}
	d := time.Second
	if dl, ok := ctx.Deadline(); ok {
		d = time.Until(dl) * 9 / 10
	}
	if d < time.Millisecond {
		return fmt.Errorf("redis: %w (no time left to wait)", ErrNotReplicated)
	}
	n, err := conn.Wait(ctx, 1, d).Result()
	if err != nil {
		return fmt.Errorf("redis: %w: WAIT: %w", ErrNotReplicated, err)
	}
	if n < 1 {
		return fmt.Errorf("redis: %w within %s", ErrNotReplicated, d.Round(time.Millisecond))
	}
	return nil
}

// reload has a cluster client read the slot map again after an error (the
// node connections used here do not follow MOVED themselves).
func (r *RedisStore) reload() {
	if c, ok := r.c.(*redis.ClusterClient); ok {
		c.ReloadState(context.Background())
	}
}

// Init checks the marker at start-up: without one (a fresh Redis, or one
// that lost its data while no verifier wrote to it) the records begin at
// now, to the second below, so that a fresh deployment accepts its first
// records; a marker of another Redis server process is a loss, as for a
// write. It warns when now and Redis's clock differ by more than the
// clock margin. An error leaves the check to the first write.
func (r *RedisStore) Init(ctx context.Context, now time.Time) error {
	out, from, rnow, existed, err := r.run(ctx, []string{r.prefix + "epoch"}, now, 0)
	if err != nil {
		return err
	}
	switch out {
	case outCreated:
		r.log.Info("single-use records: Redis holds no marker (a fresh Redis, or one that lost its data while no verifier wrote to it); records issued before this start are refused",
			"from", from.UTC().Format(time.RFC3339))
	case outLost:
		r.lost(from, existed)
	}
	r.checkEviction(ctx)
	if d := now.Sub(rnow); d > r.margin || -d > r.margin {
		r.log.Warn("single-use records: this verifier's clock differs from Redis's by more than the clock margin; keep clocks in sync (NTP)",
			"skew", d.Round(time.Millisecond).String(), "margin", r.margin.String())
	}
	return nil
}

// checkEviction warns when Redis may evict keys: an evicted record is a
// nonce or token accepted again, and no marker shows it. Redis may refuse
// CONFIG (a managed service); then nothing is said.
func (r *RedisStore) checkEviction(ctx context.Context) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	cfg, err := r.c.ConfigGet(ctx, "maxmemory*").Result()
	if err != nil {
		return
	}
	if limit, policy := cfg["maxmemory"], cfg["maxmemory-policy"]; limit != "" && limit != "0" && policy != "noeviction" {
		r.log.Warn("single-use records: Redis evicts keys when full (maxmemory-policy is not noeviction): an evicted record is a nonce or token accepted again; set maxmemory-policy noeviction",
			"maxmemory_policy", policy)
	}
}

func (r *RedisStore) lost(from time.Time, existed bool) {
	why := "the marker is gone: Redis lost its data or was flushed"
	if existed {
		why = "another Redis server process holds the records: Redis restarted or failed over"
	}
	r.log.Warn("single-use records: Redis may have lost records; refusing every nonce and token issued before the detection (store_unavailable)",
		"cause", why, "from", from.UTC().Format(time.RFC3339Nano))
}

// Consume implements Store. A record whose time has already passed is
// still written, for a second, so that a clock skew between replicas
// cannot reopen it at once.
func (r *RedisStore) Consume(ctx context.Context, id string, issued, until time.Time) (bool, error) {
	ttl := time.Until(until)
	if ttl < time.Second {
		ttl = time.Second
	}
	out, from, now, existed, err := r.run(ctx, []string{r.prefix + "epoch", r.prefix + id}, issued, ttl)
	if err != nil {
		return false, err
	}
	switch out {
	case outFirst:
		return true, nil
	case outReplayed:
		return false, nil
	case outLost:
		r.lost(from, existed)
		return false, fmt.Errorf("redis: %w (detected now)", ErrIssuedBeforeRecords)
	case outBefore:
		return false, fmt.Errorf("redis: %w (records begin %s)", ErrIssuedBeforeRecords, from.UTC().Format(time.RFC3339))
	case outAhead:
		ahead := issued.Sub(now)
		if s := now.Unix(); r.skewWarn.Load() < s-60 {
			r.skewWarn.Store(s)
			r.log.Warn("single-use records: a record is stamped ahead of Redis's clock by more than the clock margin; the issuing verifier's clock is wrong (NTP)",
				"ahead", ahead.Round(time.Millisecond).String(), "margin", r.margin.String())
		}
		return false, fmt.Errorf("redis: record stamped %s ahead of Redis's clock, more than the %s margin", ahead.Round(time.Millisecond), r.margin)
	}
	return false, errors.New("redis single-use script: unknown outcome")
}
