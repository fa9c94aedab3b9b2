package launch

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/challenge"
)

// DefaultStoreTimeout bounds one Redis call when RedisOptions.Timeout is 0.
const DefaultStoreTimeout = time.Second

// DefaultPrefix is RedisOptions.Prefix when it is "".
const DefaultPrefix = "trustgate:launch:"

// ClusterPrefix is RedisOptions.Prefix when it is "" over a
// *redis.ClusterClient: the single-use records' hash tag
// (challenge.ClusterRedisPrefix), so that an attestation's one script
// (its nonce and its launch record) touches one slot.
const ClusterPrefix = "{trustgate:used}:launch:"

// RedisOptions configure a RedisStore; the zero value is usable.
type RedisOptions struct {
	// Prefix of the record keys (a hash per launch, named by the launch
	// pseudonym in hex); "" means DefaultPrefix, or ClusterPrefix over a
	// *redis.ClusterClient.
	Prefix string
	// Timeout bounds each call (store_timeout); 0 means
	// DefaultStoreTimeout.
	Timeout time.Duration
}

// RedisStore keeps records in Redis, shared by every replica. A record is
// a hash of the launch pseudonym's key: tee, chip (pseudonym hex, "" for
// none), seq, first and last (Unix ms), anomaly ("0"/"1"); it expires
// retention after the last commit. An attestation's commit
// (Tracker.CommitConsuming) is part of the single-use script of its nonce
// (internal/challenge, NewJointScript): one round trip, atomic with the
// nonce's first use, in the records' hash slot over a cluster
// (ClusterPrefix); Commit alone is one Lua script too. When the primary
// has replicas, a commit counts only once one of them acknowledged it
// (WAIT 1, within Timeout; store_unavailable otherwise), as for single-use
// records. If Redis loses its data, sequences start again at 1.
type RedisStore struct {
	c       redis.UniversalClient
	prefix  string
	timeout time.Duration
}

// NewRedisStore returns a RedisStore on c.
func NewRedisStore(c redis.UniversalClient, o RedisOptions) *RedisStore {
	if _, cluster := c.(*redis.ClusterClient); o.Prefix == "" && cluster {
		o.Prefix = ClusterPrefix
	} else if o.Prefix == "" {
		o.Prefix = DefaultPrefix
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultStoreTimeout
	}
	return &RedisStore{c: c, prefix: o.Prefix, timeout: o.Timeout}
}

func unavailable(err error) error {
	return attest.Errorf(attest.ReasonStoreUnavailable, "launch records: %w", err)
}

// Get implements Store.
func (s *RedisStore) Get(ctx context.Context, l Pseudonym) (Record, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	m, err := s.c.HGetAll(ctx, s.prefix+l.String()).Result()
	if err != nil {
		return Record{}, false, unavailable(err)
	}
	if len(m) == 0 {
		return Record{}, false, nil
	}
	r, ok := parseRecord(l, m)
	return r, ok, nil
}

func parseRecord(l Pseudonym, m map[string]string) (Record, bool) {
	seq, err := strconv.ParseUint(m["seq"], 10, 64)
	if err != nil || seq == 0 {
		return Record{}, false
	}
	chip, err := ParsePseudonym(m["chip"])
	if err != nil {
		return Record{}, false
	}
	first, _ := strconv.ParseInt(m["first"], 10, 64)
	last, _ := strconv.ParseInt(m["last"], 10, 64)
	return Record{Launch: l, TEE: m["tee"], Chip: chip, Seq: seq, FirstSeen: time.UnixMilli(first), LastSeen: time.UnixMilli(last), Anomaly: m["anomaly"] == "1"}, true
}

// commitScript: KEYS[1] the record; ARGV prevSeq, tee, chip hex ("" for
// none), now (Unix ms), retention (ms). Returns 0 on a conflict, else 1 +
// the primary's connected replicas.
var commitScript = redis.NewScript(`
local seq = tonumber(redis.call('HGET', KEYS[1], 'seq') or '0') or 0
if seq ~= tonumber(ARGV[1]) then return 0 end
if seq == 0 then
  redis.call('DEL', KEYS[1])
  redis.call('HSET', KEYS[1], 'tee', ARGV[2], 'chip', ARGV[3], 'first', ARGV[4], 'anomaly', '0')
else
  local chip = redis.call('HGET', KEYS[1], 'chip') or ''
  if chip == '' then
    redis.call('HSET', KEYS[1], 'chip', ARGV[3])
  elseif ARGV[3] ~= '' and chip ~= ARGV[3] then
    redis.call('HSET', KEYS[1], 'anomaly', '1')
  end
end
redis.call('HSET', KEYS[1], 'seq', seq + 1, 'last', ARGV[4])
redis.call('PEXPIRE', KEYS[1], ARGV[5])
return tonumber(string.match(redis.call('INFO', 'replication'), 'connected_slaves:(%d+)') or '0') + 1
`)

// jointScript is the single-use script (internal/challenge) with a
// launch commit: an attestation's nonce and its launch record in one
// script. argv[5] the sequence number the record must hold (-1: any; a
// policy that never reads input.launch), argv[6] tee, argv[7] chip hex
// ("" for none), argv[8] now (Unix ms), argv[9] retention (ms). Both
// replies are the record as found: {seq, chip, first}; a refusal (the
// record's seq is not argv[5]) records nothing, not even the nonce.
var jointScript = challenge.NewJointScript(`
local function joint_check(key, argv)
  local r = redis.call('HMGET', key, 'seq', 'chip', 'first')
  local seq = tonumber(r[1]) or 0
  local want = tonumber(argv[5])
  local found = {seq, r[2] or '', r[3] or '0'}
  if want >= 0 and seq ~= want then return found, nil end
  return nil, found
end
local function joint_write(key, argv, found)
  local seq, chip = found[1], found[2]
  if seq == 0 then
    redis.call('HSET', key, 'tee', argv[6], 'chip', argv[7], 'first', argv[8], 'anomaly', '0', 'seq', 1, 'last', argv[8])
  elseif chip == '' then
    redis.call('HSET', key, 'chip', argv[7], 'seq', seq + 1, 'last', argv[8])
  elseif argv[7] ~= '' and chip ~= argv[7] then
    redis.call('HSET', key, 'anomaly', '1', 'seq', seq + 1, 'last', argv[8])
  else
    redis.call('HSET', key, 'seq', seq + 1, 'last', argv[8])
  end
  redis.call('PEXPIRE', key, argv[9])
  return found
end
`)

// joint is p's commit as a joint write of the single-use script.
func (s *RedisStore) joint(p *Pending, now time.Time, retention time.Duration) *challenge.Joint {
	want := int64(-1)
	if p.read {
		want = int64(p.prev.Seq)
	}
	return &challenge.Joint{Script: jointScript, Key: s.prefix + p.launch.String(),
		Args: []any{want, p.tee, p.chip.String(), now.UnixMilli(), max(retention.Milliseconds(), 1)}}
}

// parseJointReply reads jointScript's reply: the record as found.
func parseJointReply(p *Pending, v []any) (Record, bool, error) {
	if len(v) != 3 {
		return Record{}, false, fmt.Errorf("joint reply of %d values, want 3", len(v))
	}
	seq, ok1 := v[0].(int64)
	chipHex, ok2 := v[1].(string)
	firstMs, ok3 := v[2].(string)
	if !ok1 || !ok2 || !ok3 || seq < 0 {
		return Record{}, false, errors.New("joint reply: not {seq, chip, first}")
	}
	if seq == 0 {
		return Record{}, false, nil
	}
	chip, err := ParsePseudonym(chipHex)
	if err != nil {
		return Record{}, false, err
	}
	first, _ := strconv.ParseInt(firstMs, 10, 64)
	return Record{Launch: p.launch, TEE: p.tee, Chip: chip, Seq: uint64(seq), FirstSeen: time.UnixMilli(first)}, true, nil
}

// Commit implements Store.
func (s *RedisStore) Commit(ctx context.Context, l Pseudonym, tee string, chip Pseudonym, prevSeq uint64, now time.Time, retention time.Duration) error {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	key := s.prefix + l.String()
	// The write and its WAIT go over one connection to the key's primary
	// (WAIT counts that connection's writes).
	var sc redis.Scripter = s.c
	var conn *redis.Conn
	switch c := s.c.(type) {
	case *redis.Client:
		conn = c.Conn()
	case *redis.ClusterClient:
		node, err := c.MasterForKey(ctx, key)
		if err != nil {
			return unavailable(err)
		}
		conn = node.Conn()
	}
	if conn != nil {
		defer conn.Close()
		sc = conn
	}
	// Run sends EVALSHA and, only on NOSCRIPT (nothing done), EVAL.
	out, err := commitScript.Run(ctx, sc, []string{key},
		prevSeq, tee, chip.String(), now.UnixMilli(), max(retention.Milliseconds(), 1)).Int64()
	if err != nil {
		return unavailable(err)
	}
	if out == 0 {
		return ErrConflict
	}
	if out > 1 { // the primary has replicas: one must have the commit
		return s.wait(ctx, conn)
	}
	return nil
}

// wait sends WAIT 1 on conn within what remains of ctx, as the single-use
// store does: a commit counts once a replica has it, so a promoted replica
// does not hand out a sequence number again.
func (s *RedisStore) wait(ctx context.Context, conn *redis.Conn) error {
	if conn == nil {
		return unavailable(fmt.Errorf("a %T cannot send WAIT on the connection that wrote", s.c))
	}
	d := time.Second
	if dl, ok := ctx.Deadline(); ok {
		d = time.Until(dl) * 9 / 10
	}
	if d < time.Millisecond {
		return unavailable(errors.New("no time left to WAIT for a replica"))
	}
	n, err := conn.Wait(ctx, 1, d).Result()
	if err != nil {
		return unavailable(fmt.Errorf("WAIT: %w", err))
	}
	if n < 1 {
		return unavailable(fmt.Errorf("no replica acknowledged the launch record within %s", d.Round(time.Millisecond)))
	}
	return nil
}

// List implements Store: a SCAN of the record keys (on every primary of a
// cluster), then their hashes, all within one Timeout.
func (s *RedisStore) List(ctx context.Context, limit int) ([]Record, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	var keys []string
	var mu sync.Mutex
	scan := func(ctx context.Context, c redis.Cmdable) error {
		var cursor uint64
		for {
			ks, next, err := c.Scan(ctx, cursor, s.prefix+"*", 256).Result()
			if err != nil {
				return err
			}
			mu.Lock()
			keys = append(keys, ks...)
			n := len(keys)
			mu.Unlock()
			cursor = next
			if cursor == 0 || n >= limit {
				return nil
			}
		}
	}
	var err error
	if cc, ok := s.c.(*redis.ClusterClient); ok {
		err = cc.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error { return scan(ctx, m) })
	} else {
		err = scan(ctx, s.c)
	}
	if err != nil {
		return nil, unavailable(err)
	}
	if len(keys) > limit {
		keys = keys[:limit]
	}
	cmds := make([]*redis.MapStringStringCmd, len(keys))
	if _, err := s.c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, k := range keys {
			cmds[i] = p.HGetAll(ctx, k)
		}
		return nil
	}); err != nil {
		return nil, unavailable(err)
	}
	out := make([]Record, 0, len(keys))
	for i, k := range keys {
		l, err := ParsePseudonym(k[len(s.prefix):])
		if err != nil {
			continue
		}
		if r, ok := parseRecord(l, cmds[i].Val()); ok {
			out = append(out, r)
		}
	}
	return out, nil
}
