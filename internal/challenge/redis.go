package challenge

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"strings"
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
	// Connect, if not nil, is the ConnectCheck installed as the client's
	// OnConnect hook: the store's script then reads no run_id and no
	// replica count (INFO) per write. nil: the script reads both on every
	// write.
	Connect *ConnectCheck
}

// RedisStore is a Store shared by every replica using the same Redis: a
// record is one key, created with SET NX and expiring with it, so that of
// several replicas consuming the same id at once exactly one succeeds.
//
// Every write is one Lua script, atomic in Redis, one round trip, that
// also keeps the marker Prefix+"epoch" (a hash: "from", Unix ms, when the
// records begin; "run", the run_id of the Redis server process that holds
// them). In one step the script:
//
//  1. reads Redis's clock (TIME) and the marker;
//  2. if the marker is gone (the data was lost, or flushed), sets "from"
//     to Redis's clock plus ClockMargin and "run" to this server's run_id,
//     and refuses the record (ErrIssuedBeforeRecords): a loss is detected
//     once, by the one write that finds it;
//  3. refuses a record stamped more than ClockMargin after Redis's clock
//     (its issuer's clock is ahead; the outcome cannot be confirmed);
//  4. refuses a record issued before "from" (ErrIssuedBeforeRecords);
//  5. else SET NX PX the record's key until its expiry (at least a
//     second, so a clock skew between replicas cannot reopen it at once),
//     and with a Joint (ConsumeJoint) does the joint's write too.
//
// The other way of losing records, a Redis server process that is not the
// one that held them (a restart, with or without persistence, from an older
// snapshot; a failover to another server), is seen by ConnectCheck: such a
// change breaks every connection, and the client's OnConnect hook compares
// the new connection's run_id with the marker's before the first command
// on it, moving "from" as in 2 when they differ. A client without a
// ConnectCheck (RedisOptions.Connect nil) has the script read the run_id
// (INFO server) on every write instead: exact too, and costlier.
//
// Why this holds across a loss: a record accepted before the loss was
// stamped at most ClockMargin after Redis's clock when it was written
// (rule 3), a time before the loss; after it, "from" is Redis's clock at
// the detection, a time after the loss, plus ClockMargin: the record's
// stamp is before "from", and it is refused. It relies on Redis's clock not going back across the restart by more
// than what separates the loss from its detection, on nothing but a
// restart, a failover or a flush removing records (maxmemory-policy
// noeviction; nobody deletes Prefix keys), and on nothing relaying a
// client's connection to another server without breaking it (a TCP proxy
// that reconnects behind the client's back). Init, at start, creates a
// missing marker without calling it a loss, so that a fresh deployment
// accepts its first records: a loss that no write saw before a verifier
// starts is then covered from that start on, to the second below, without
// the clock margin.
//
// Replication: a first use is counted only once a replica has it. The
// store knows how many replicas the primary has from each new connection
// (ConnectCheck) and from Probe (at least every 2 s in a server; without a
// ConnectCheck, from the script itself); when there is at least one, it
// sends WAIT 1 on the connection that wrote (WAIT counts that connection's
// writes only), bounded by what remains of Timeout, and fewer than one
// acknowledgement is ErrNotReplicated. A primary with no connected replica
// (a standalone Redis; a primary whose replicas are all down) is not waited
// for: a failover cannot then promote a server that lacks the record
// without also changing the run_id in the marker, which the first
// connection to it detects as a loss (see above); so a replica that joined
// since the store last looked is safe too. The client must be a
// *redis.Client (standalone, or sentinel's failover client) or a
// *redis.ClusterClient: with any other, a write that needs WAIT is
// ErrNotReplicated.
type RedisStore struct {
	c        redis.UniversalClient
	prefix   string
	timeout  time.Duration
	margin   time.Duration
	log      *slog.Logger
	each     bool         // no ConnectCheck: the script checks the run_id and replicas itself
	replicas atomic.Int64 // the primary's replicas, as last seen (with a ConnectCheck)
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
	r := &RedisStore{c: c, prefix: o.Prefix, timeout: o.Timeout, margin: o.ClockMargin, log: o.Logger, each: o.Connect == nil}
	if o.Connect != nil {
		o.Connect.store.Store(r)
	}
	return r
}

// Prefix is the prefix of the store's keys (a Joint's key must share its
// hash tag over a cluster).
func (r *RedisStore) Prefix() string { return r.prefix }

// scriptHead and scriptBody make the single-use script, with a joint's Lua
// between them (NewJointScript). KEYS[1] the marker, KEYS[2] the record
// (absent: the start-up check of Init), KEYS[3] the joint's key (absent:
// no joint); ARGV[1] the record's issue time (Init: the verifier's clock),
// Unix ms; ARGV[2] the record's lifetime, ms; ARGV[3] the clock margin, ms;
// ARGV[4] "1" to check the run_id and count the replicas here (no
// ConnectCheck); ARGV[5...] the joint's. Reply {outcome, from, redis now,
// marker existed, connected replicas (ARGV[4] "1" only), joint reply...}.
//
// A joint defines joint_check(key, argv), which returns a refusal (a
// table: nothing is recorded, outcome 7) or nil and a state, and
// joint_write(key, argv, state), run after the first use, which returns
// its reply (a table).
const scriptHead = `
local function info(section, field)
  return string.match(redis.call('INFO', section), field .. ':(%w+)')
end
`

const scriptBody = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local issued = tonumber(ARGV[1])
local margin = tonumber(ARGV[3])
local each = ARGV[4] == '1'
local replicas = 0
if each then replicas = tonumber(info('replication', 'connected_slaves')) or 0 end
local m = redis.call('HMGET', KEYS[1], 'from', 'run')
local from = tonumber(m[1])
if #KEYS == 1 and not from then
  from = issued - issued % 1000
  redis.call('HSET', KEYS[1], 'from', from, 'run', info('server', 'run_id'))
  return {5, from, now, 0, replicas}
end
if not from or (each and m[2] ~= info('server', 'run_id')) then
  local nf = now + margin
  local existed = 0
  if from then
    existed = 1
    if from > nf then nf = from end
  end
  redis.call('HSET', KEYS[1], 'from', nf, 'run', info('server', 'run_id'))
  return {2, nf, now, existed, replicas}
end
if #KEYS == 1 then return {6, from, now, 1, replicas} end
if issued > now + margin then return {3, from, now, 1, replicas} end
if issued < from then return {4, from, now, 1, replicas} end
local state
if #KEYS == 3 then
  local refused
  refused, state = joint_check(KEYS[3], ARGV)
  if refused then
    local out = {7, from, now, 1, replicas}
    for _, v in ipairs(refused) do out[#out + 1] = v end
    return out
  end
end
if not redis.call('SET', KEYS[2], '1', 'NX', 'PX', ARGV[2]) then return {0, from, now, 1, replicas} end
local out = {1, from, now, 1, replicas}
if #KEYS == 3 then
  for _, v in ipairs(joint_write(KEYS[3], ARGV, state)) do out[#out + 1] = v end
end
return out
`

// JointScript is the single-use script with a joint's Lua (see
// NewJointScript).
type JointScript struct{ s *redis.Script }

// NewJointScript returns the single-use script with lua, which defines the
// local functions joint_check(key, argv) and joint_write(key, argv,
// state): joint_check runs after the record's checks and before its write,
// and returns a refusal (a table, the reply; nothing is recorded) or nil
// and a state; joint_write runs only after the record's first use and
// returns its reply (a table). argv is the whole ARGV: the joint's own
// arguments begin at argv[5]. Build it once (a package variable).
func NewJointScript(lua string) *JointScript {
	return &JointScript{s: redis.NewScript(scriptHead + lua + scriptBody)}
}

// consumeScript is the script without a joint.
var consumeScript = NewJointScript(`
local function joint_check(key, argv) return nil end
local function joint_write(key, argv, state) return {} end
`)

// Joint is a write done by the single-use script together with a record,
// atomically: only if the record is a first use (ConsumeJoint).
type Joint struct {
	Script *JointScript
	// Key is the joint's key, in the same hash slot as the store's keys
	// over a cluster.
	Key string
	// Args are the joint's arguments (argv[5...]).
	Args []any
}

// ErrJointRefused is ConsumeJoint's answer when the joint's check refused:
// nothing was recorded, and the reply is the refusal.
var ErrJointRefused = errors.New("the joint write's check refused; nothing was recorded")

// connectScript: KEYS[1] the marker; ARGV[1] the clock margin, ms. Reply
// {outcome, from, redis now, marker existed, connected replicas}: outLost
// when the marker names another server process (and "from" was moved),
// outOK when it names this one, outNoMarker without one (left to the
// writes and Init).
var connectScript = redis.NewScript(scriptHead + `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local run = info('server', 'run_id')
local replicas = tonumber(info('replication', 'connected_slaves')) or 0
local m = redis.call('HMGET', KEYS[1], 'from', 'run')
local from = tonumber(m[1])
if not from then return {8, 0, now, 0, replicas} end
if m[2] == run then return {6, from, now, 1, replicas} end
local nf = now + tonumber(ARGV[1])
if from > nf then nf = from end
redis.call('HSET', KEYS[1], 'from', nf, 'run', run)
return {2, nf, now, 1, replicas}
`)

// Script outcomes.
const (
	outReplayed  = 0
	outFirst     = 1
	outLost      = 2
	outAhead     = 3
	outBefore    = 4
	outCreated   = 5
	outOK        = 6
	outRefused   = 7
	outNoMarker  = 8
	replyHeadLen = 5
)

// reply is one script's answer.
type reply struct {
	out      int64
	from     time.Time
	now      time.Time
	existed  bool
	replicas int64
	joint    []any
}

func parseReply(v []any) (reply, error) {
	if len(v) < replyHeadLen {
		return reply{}, fmt.Errorf("%d values, want at least %d", len(v), replyHeadLen)
	}
	var h [replyHeadLen]int64
	for i := range h {
		n, ok := v[i].(int64)
		if !ok {
			return reply{}, fmt.Errorf("value %d is a %T, want an integer", i, v[i])
		}
		h[i] = n
	}
	return reply{out: h[0], from: time.UnixMilli(h[1]), now: time.UnixMilli(h[2]), existed: h[3] == 1, replicas: h[4], joint: v[replyHeadLen:]}, nil
}

func (r *RedisStore) run(ctx context.Context, keys []string, issued time.Time, ttl time.Duration, j *Joint) (reply, error) {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	// The write and its WAIT go over one connection: WAIT counts the
	// writes of the connection it is sent on.
	conn, err := r.conn(ctx, keys[0])
	if err != nil {
		r.reload()
		return reply{}, fmt.Errorf("redis single-use store: the primary of the records: %w", err)
	}
	var sc redis.Scripter = r.c
	if conn != nil {
		defer conn.Close()
		sc = conn
	}
	each := "0"
	if r.each {
		each = "1"
	}
	script := consumeScript
	args := []any{issued.UnixMilli(), ttl.Milliseconds(), r.margin.Milliseconds(), each}
	if j != nil {
		script = j.Script
		keys = append(keys, j.Key)
		args = append(args, j.Args...)
	}
	// Run sends EVALSHA and, only if Redis answers NOSCRIPT (nothing was
	// done), EVAL: never the same write twice.
	v, err := script.s.Run(ctx, sc, keys, args...).Slice()
	if err != nil {
		r.reload()
		return reply{}, fmt.Errorf("redis single-use script: %w", err)
	}
	rep, err := parseReply(v)
	if err != nil {
		return reply{}, fmt.Errorf("redis single-use script: %w", err)
	}
	replicas := rep.replicas
	if !r.each {
		replicas = r.replicas.Load()
	}
	if rep.out == outFirst && replicas > 0 {
		if err := r.wait(ctx, conn); err != nil {
			return rep, err
		}
	}
	return rep, nil
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
	rep, err := r.run(ctx, []string{r.prefix + "epoch"}, now, 0, nil)
	if err != nil {
		return err
	}
	switch rep.out {
	case outCreated:
		r.log.Info("single-use records: Redis holds no marker (a fresh Redis, or one that lost its data while no verifier wrote to it); records issued before this start are refused",
			"from", rep.from.UTC().Format(time.RFC3339))
	case outLost:
		r.lost(rep.from, rep.existed)
	}
	r.checkEviction(ctx)
	if d := now.Sub(rep.now); d > r.margin || -d > r.margin {
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
	first, _, err := r.ConsumeJoint(ctx, id, issued, until, nil)
	return first, err
}

// ConsumeJoint is Consume with j's write done by the same script, only if
// the record is a first use: first true and j's reply when it was;
// ErrJointRefused and the refusal when j's check refused (nothing
// recorded); first false, no error, for a replay. A nil j is Consume.
func (r *RedisStore) ConsumeJoint(ctx context.Context, id string, issued, until time.Time, j *Joint) (first bool, jointReply []any, err error) {
	ttl := time.Until(until)
	if ttl < time.Second {
		ttl = time.Second
	}
	rep, err := r.run(ctx, []string{r.prefix + "epoch", r.prefix + id}, issued, ttl, j)
	if err != nil {
		return false, nil, err
	}
	switch rep.out {
	case outFirst:
		return true, rep.joint, nil
	case outReplayed:
		return false, nil, nil
	case outRefused:
		return false, rep.joint, ErrJointRefused
	case outLost:
		r.lost(rep.from, rep.existed)
		return false, nil, fmt.Errorf("redis: %w (detected now)", ErrIssuedBeforeRecords)
	case outBefore:
		return false, nil, fmt.Errorf("redis: %w (records begin %s)", ErrIssuedBeforeRecords, rep.from.UTC().Format(time.RFC3339))
	case outAhead:
		ahead := issued.Sub(rep.now)
		if s := rep.now.Unix(); r.skewWarn.Load() < s-60 {
			r.skewWarn.Store(s)
			r.log.Warn("single-use records: a record is stamped ahead of Redis's clock by more than the clock margin; the issuing verifier's clock is wrong (NTP)",
				"ahead", ahead.Round(time.Millisecond).String(), "margin", r.margin.String())
		}
		return false, nil, fmt.Errorf("redis: record stamped %s ahead of Redis's clock, more than the %s margin", ahead.Round(time.Millisecond), r.margin)
	}
	return false, nil, errors.New("redis single-use script: unknown outcome")
}

// Probe asks the primary that holds the records how many replicas it has
// (INFO replication, one round trip within Timeout), so that the store
// waits for one when it has any (see RedisStore); an error means the store
// did not answer. A server calls it at least every 2 s
// (trustgate_store_up).
func (r *RedisStore) Probe(ctx context.Context) error {
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	var c redis.Cmdable = r.c
	if cc, ok := r.c.(*redis.ClusterClient); ok {
		node, err := cc.MasterForKey(ctx, r.prefix+"epoch")
		if err != nil {
			return err
		}
		c = node
	}
	s, err := c.Info(ctx, "replication").Result()
	if err != nil {
		return err
	}
	r.replicas.Store(connectedReplicas(s))
	return nil
}

// connectedReplicas reads connected_slaves from INFO replication's text (0
// when absent).
func connectedReplicas(info string) int64 {
	_, rest, ok := strings.Cut(info, "connected_slaves:")
	if !ok {
		return 0
	}
	end := strings.IndexAny(rest, "\r\n")
	if end < 0 {
		end = len(rest)
	}
	n, _ := strconv.ParseInt(rest[:end], 10, 64)
	return n
}

// ConnectCheck checks, on every new connection to Redis, that the server
// process answering is the one that holds the records (see RedisStore):
// install OnConnect as the client's OnConnect hook (redis.Options,
// FailoverOptions, ClusterOptions) before the client is used, and give the
// check to the store (RedisOptions.Connect). Connections opened before a
// store is given are not checked. The zero value is ready to use.
type ConnectCheck struct {
	store atomic.Pointer[RedisStore]
}

// OnConnect runs one script on the new connection cn: it reads the
// server's run_id and connected replicas (INFO) and the marker; a marker
// of another server process is a loss ("from" moves as for a write that
// finds the marker gone), logged once. A connection to a server that holds
// no records (a sentinel; a cluster node that does not serve the marker's
// slot) is left alone; any other error fails the connection, so that
// nothing is written on it.
func (k *ConnectCheck) OnConnect(ctx context.Context, cn *redis.Conn) error {
	r := k.store.Load()
	if r == nil {
		return nil
	}
	v, err := connectScript.Run(ctx, cn, []string{r.prefix + "epoch"}, r.margin.Milliseconds()).Slice()
	if err != nil {
		msg := err.Error()
		if strings.HasPrefix(msg, "MOVED ") || strings.HasPrefix(msg, "ASK ") || strings.Contains(msg, "unknown command") {
			return nil
		}
		return fmt.Errorf("redis single-use records: checking the server process on a new connection: %w", err)
	}
	rep, err := parseReply(v)
	if err != nil {
		return fmt.Errorf("redis single-use records: connection check: %w", err)
	}
	r.replicas.Store(rep.replicas)
	if rep.out == outLost {
		r.lost(rep.from, true)
	}
	return nil
}
