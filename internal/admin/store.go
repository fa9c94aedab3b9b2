package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/refvalues"
)

// ErrApproved is Store.Put's answer to an approval of a label the layer
// already approves.
var ErrApproved = errors.New("the admin layer already approves this label")

// ErrReplayed is Store.Put's answer to an approval whose jti was accepted
// before, or that was signed (iat) before the last withdrawal of its
// label.
var ErrReplayed = errors.New("the approval was accepted before, or signed before the last withdrawal of its label")

// ErrTrustKey is Store.Put's answer when the layer records another trust
// key requirement than the writer's.
var ErrTrustKey = errors.New("the admin layer records another trust key requirement")

// Change is what Put checks besides the record.
type Change struct {
	// JTI is a signed approval's id ("" none): accepted once, ever.
	JTI string
	// IssuedAt is when a signed approval was signed (zero: unsigned); it
	// must not be before the label's last withdrawal.
	IssuedAt time.Time
	// TrustKey is the writer's requirement (Overlay.TrustKey); the layer
	// records it at the first change and refuses another later.
	TrustKey string
}

// Confirmer is a Store that knows whether its layer was confirmed on the
// store's current run (RedisStore: stamped with the run_id of the Redis
// server process that holds it). A layer not confirmed may be one the
// fleet left behind (Redis restored from an older snapshot), or the
// current one after a plain restart: only a replica that holds a layer at
// least as new, or an operator, can tell, and confirms it. A store at
// version 0 (no layer made yet) is confirmed; a change made on a
// confirmed layer, and a layer written back whole (Restore), are
// confirmed too.
type Confirmer interface {
	// VersionConfirmed is Version, and whether the layer is confirmed.
	VersionConfirmed(ctx context.Context) (int64, bool, error)
	// LoadConfirmed is Load, and whether the layer is confirmed (read
	// together).
	LoadConfirmed(ctx context.Context) (*refvalues.Overlay, bool, error)
	// Confirm confirms the layer if and only if its version is still v;
	// it reports whether it did.
	Confirm(ctx context.Context, v int64) (bool, error)
}

// Store keeps the admin layer: every replica of a fleet reads the same
// one (RedisStore), or a replica keeps its own (MemoryStore).
type Store interface {
	// Version is the layer's change counter (0: no change ever made).
	Version(ctx context.Context) (int64, error)
	// Load returns the whole layer and its version, read together.
	Load(ctx context.Context) (*refvalues.Overlay, error)
	// Put sets the record of label and returns the new version. An
	// approval of a label whose record already approves it is
	// ErrApproved; a replayed approval ErrReplayed; a change under
	// another trust key requirement ErrTrustKey. A withdrawal records
	// its time (r.At) as the label's last withdrawal.
	Put(ctx context.Context, label string, r refvalues.Record, c Change) (int64, error)
	// Restore writes o back whole, if and only if the store's version is
	// still from (the older version a replica saw); it reports whether
	// it did.
	Restore(ctx context.Context, o *refvalues.Overlay, from int64) (bool, error)
}

// MemoryStore is a Store of one process: its layer is lost when the
// process ends and no other replica sees it. The zero value is ready.
type MemoryStore struct {
	mu sync.Mutex
	o  refvalues.Overlay
}

// Version implements Store.
func (s *MemoryStore) Version(context.Context) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.o.Version, nil
}

// Load implements Store.
func (s *MemoryStore) Load(context.Context) (*refvalues.Overlay, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return cloneOverlay(&s.o), nil
}

func cloneOverlay(o *refvalues.Overlay) *refvalues.Overlay {
	c := *o
	c.Records = maps.Clone(o.Records)
	c.Withdrawn = maps.Clone(o.Withdrawn)
	c.JTIs = maps.Clone(o.JTIs)
	if c.Records == nil {
		c.Records = map[string]refvalues.Record{}
	}
	return &c
}

// Put implements Store.
func (s *MemoryStore) Put(_ context.Context, label string, r refvalues.Record, c Change) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.o.TrustKey != "" && s.o.TrustKey != c.TrustKey {
		return 0, ErrTrustKey
	}
	if !r.Withdrawn() {
		if cur, ok := s.o.Records[label]; ok && !cur.Withdrawn() {
			return 0, ErrApproved
		}
		if c.JTI != "" && s.o.JTIs[c.JTI] {
			return 0, ErrReplayed
		}
		if w, ok := s.o.Withdrawn[label]; ok && !c.IssuedAt.IsZero() && c.IssuedAt.UnixMilli() < w.UnixMilli() {
			return 0, ErrReplayed
		}
		if c.JTI != "" {
			if s.o.JTIs == nil {
				s.o.JTIs = map[string]bool{}
			}
			s.o.JTIs[c.JTI] = true
		}
	} else {
		if s.o.Withdrawn == nil {
			s.o.Withdrawn = map[string]time.Time{}
		}
		s.o.Withdrawn[label] = r.At
	}
	if s.o.Records == nil {
		s.o.Records = map[string]refvalues.Record{}
	}
	s.o.TrustKey = c.TrustKey
	s.o.Records[label] = r
	s.o.Version++
	return s.o.Version, nil
}

// Restore implements Store.
func (s *MemoryStore) Restore(_ context.Context, o *refvalues.Overlay, from int64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.o.Version != from {
		return false, nil
	}
	s.o = *cloneOverlay(o)
	return true, nil
}

// DefaultRedisKey is where a RedisStore keeps the layer: a hash of label
// to record (JSON), with the version counter at DefaultRedisKey+":version",
// the labels' last withdrawals (Unix milliseconds) in the hash
// +":withdrawn", the accepted approval ids in the set +":jtis", the
// trust key requirement at +":trust" and the run_id of the Redis server
// process the layer was last confirmed on at +":run". The hash tag keeps them in one slot
// of a Redis Cluster, as the scripts that change them need.
const DefaultRedisKey = "{trustgate:admin}:refvalues"

// RedisStore is the Store every replica using the same Redis shares. A
// change is one Lua script (check, set the record, increment the
// version), so a reader that sees a version sees the records of it. With
// Redis persistence (AOF), the layer survives restarts of Redis too.
type RedisStore struct {
	rdb     redis.UniversalClient
	key     string
	timeout time.Duration
}

// NewRedisStore returns the store at DefaultRedisKey; each call waits at
// most timeout (0: one second), and a call that gets no answer is
// store_unavailable.
func NewRedisStore(rdb redis.UniversalClient, timeout time.Duration) *RedisStore {
	if timeout <= 0 {
		timeout = time.Second
	}
	return &RedisStore{rdb: rdb, key: DefaultRedisKey, timeout: timeout}
}

func (s *RedisStore) keys() []string {
	return []string{s.key, s.key + ":version", s.key + ":withdrawn", s.key + ":jtis", s.key + ":trust", s.key + ":run"}
}

// runHead reads the run_id of the Redis server process running the
// script (one INFO per script, however often it is asked), and
// confirmed() whether the layer's stamp (KEYS[6]) is it; a layer at
// version 0 (none made yet) is confirmed.
const runHead = `
local runID
local function run()
  if not runID then runID = string.match(redis.call('INFO', 'server'), 'run_id:(%w+)') end
  return runID
end
local function confirmed()
  if tonumber(redis.call('GET', KEYS[2]) or '0') == 0 then return '1' end
  if redis.call('GET', KEYS[6]) == run() then return '1' end
  return '0'
end
`

var (
	loadScript = redis.NewScript(runHead + `
return {redis.call('GET', KEYS[2]) or '0', redis.call('HGETALL', KEYS[1]), redis.call('HGETALL', KEYS[3]),
  redis.call('SMEMBERS', KEYS[4]), redis.call('GET', KEYS[5]) or '', confirmed()}`)
	versionScript = redis.NewScript(runHead + `
return {redis.call('GET', KEYS[2]) or '0', confirmed()}`)
	// ARGV: the version confirmed.
	confirmScript = redis.NewScript(runHead + `
if tonumber(redis.call('GET', KEYS[2]) or '0') ~= tonumber(ARGV[1]) then return 0 end
redis.call('SET', KEYS[6], run())
return 1`)
	// ARGV: label, record, '1' for an approval, jti, iat (ms, '' none),
	// withdrawal time (ms), trust key requirement.
	putScript = redis.NewScript(runHead + `
local t = redis.call('GET', KEYS[5])
if t and t ~= ARGV[7] then return -4 end
if ARGV[3] == '1' then
  local cur = redis.call('HGET', KEYS[1], ARGV[1])
  if cur and cjson.decode(cur)['entry'] then return -1 end
  if ARGV[4] ~= '' and redis.call('SISMEMBER', KEYS[4], ARGV[4]) == 1 then return -2 end
  local w = redis.call('HGET', KEYS[3], ARGV[1])
  if w and ARGV[5] ~= '' and tonumber(ARGV[5]) < tonumber(w) then return -3 end
  if ARGV[4] ~= '' then redis.call('SADD', KEYS[4], ARGV[4]) end
else
  redis.call('HSET', KEYS[3], ARGV[1], ARGV[6])
end
if not t then redis.call('SET', KEYS[5], ARGV[7]) end
if confirmed() == '1' then redis.call('SET', KEYS[6], run()) end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('INCR', KEYS[2])`)
	// ARGV: expected version, new version, trust, #records, label,
	// record..., #withdrawn, label, ms..., jti...
	restoreScript = redis.NewScript(runHead + `
if tonumber(redis.call('GET', KEYS[2]) or '0') ~= tonumber(ARGV[1]) then return 0 end
redis.call('DEL', KEYS[1], KEYS[3], KEYS[4], KEYS[5])
local i = 4
local n = tonumber(ARGV[i])
for j = 1, n do redis.call('HSET', KEYS[1], ARGV[i+2*j-1], ARGV[i+2*j]) end
i = i + 2*n + 1
n = tonumber(ARGV[i])
for j = 1, n do redis.call('HSET', KEYS[3], ARGV[i+2*j-1], ARGV[i+2*j]) end
i = i + 2*n + 1
for j = i, #ARGV do redis.call('SADD', KEYS[4], ARGV[j]) end
if ARGV[3] ~= '' then redis.call('SET', KEYS[5], ARGV[3]) end
redis.call('SET', KEYS[2], ARGV[2])
redis.call('SET', KEYS[6], run())
return 1`)
)

func (s *RedisStore) unavailable(what string, err error) error {
	return attest.Errorf(attest.ReasonStoreUnavailable, "admin layer in redis: %s: %w", what, err)
}

// Version implements Store.
func (s *RedisStore) Version(ctx context.Context) (int64, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	v, err := s.rdb.Get(ctx, s.key+":version").Int64()
	if errors.Is(err, redis.Nil) {
		return 0, nil
	}
	if err != nil {
		return 0, s.unavailable("reading the version", err)
	}
	return v, nil
}

// Load implements Store. A record that does not decode is an error (the
// whole layer is refused; the caller keeps the last good one).
func (s *RedisStore) Load(ctx context.Context) (*refvalues.Overlay, error) {
	o, _, err := s.LoadConfirmed(ctx)
	return o, err
}

// VersionConfirmed implements Confirmer.
func (s *RedisStore) VersionConfirmed(ctx context.Context) (int64, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res, err := versionScript.Run(ctx, s.rdb, s.keys()).Slice()
	if err != nil {
		return 0, false, s.unavailable("reading the version", err)
	}
	if len(res) != 2 {
		return 0, false, s.unavailable("reading the version", fmt.Errorf("unexpected answer of %d items", len(res)))
	}
	vs, _ := res[0].(string)
	v, err := strconv.ParseInt(vs, 10, 64)
	if err != nil {
		return 0, false, fmt.Errorf("admin layer in redis: version is not a number")
	}
	return v, res[1] == "1", nil
}

// Confirm implements Confirmer.
func (s *RedisStore) Confirm(ctx context.Context, v int64) (bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	n, err := confirmScript.Run(ctx, s.rdb, s.keys(), v).Int()
	if err != nil {
		return false, s.unavailable("confirming", err)
	}
	return n == 1, nil
}

// LoadConfirmed implements Confirmer.
func (s *RedisStore) LoadConfirmed(ctx context.Context) (*refvalues.Overlay, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res, err := loadScript.Run(ctx, s.rdb, s.keys()).Slice()
	if err != nil {
		return nil, false, s.unavailable("loading", err)
	}
	if len(res) != 6 {
		return nil, false, s.unavailable("loading", fmt.Errorf("unexpected answer of %d items", len(res)))
	}
	o, err := decodeLayer(res)
	return o, res[5] == "1", err
}

// decodeLayer decodes loadScript's answer.
func decodeLayer(res []any) (*refvalues.Overlay, error) {
	vs, _ := res[0].(string)
	v, err := strconv.ParseInt(vs, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("admin layer in redis: version is not a number")
	}
	o := &refvalues.Overlay{Version: v, Records: map[string]refvalues.Record{}}
	o.TrustKey, _ = res[4].(string)
	kv, _ := res[1].([]any)
	for i := 0; i+1 < len(kv); i += 2 {
		label, _ := kv[i].(string)
		raw, _ := kv[i+1].(string)
		var r refvalues.Record
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return nil, fmt.Errorf("admin layer in redis: the record of label %q does not decode: %w", label, err)
		}
		o.Records[label] = r
	}
	if w, _ := res[2].([]any); len(w) > 0 {
		o.Withdrawn = map[string]time.Time{}
		for i := 0; i+1 < len(w); i += 2 {
			label, _ := w[i].(string)
			ms, _ := w[i+1].(string)
			n, err := strconv.ParseInt(ms, 10, 64)
			if err != nil {
				return nil, fmt.Errorf("admin layer in redis: the withdrawal time of label %q is not a number", label)
			}
			o.Withdrawn[label] = time.UnixMilli(n).UTC()
		}
	}
	if ids, _ := res[3].([]any); len(ids) > 0 {
		o.JTIs = map[string]bool{}
		for _, id := range ids {
			if s, ok := id.(string); ok {
				o.JTIs[s] = true
			}
		}
	}
	return o, nil
}

// Restore implements Store: one script, so that a change made by another
// replica in between is never overwritten unseen.
func (s *RedisStore) Restore(ctx context.Context, o *refvalues.Overlay, from int64) (bool, error) {
	args := []any{from, o.Version, o.TrustKey, len(o.Records)}
	for label, r := range o.Records {
		b, err := json.Marshal(r)
		if err != nil {
			return false, err
		}
		args = append(args, label, string(b))
	}
	args = append(args, len(o.Withdrawn))
	for label, at := range o.Withdrawn {
		args = append(args, label, at.UnixMilli())
	}
	for id := range o.JTIs {
		args = append(args, id)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	n, err := restoreScript.Run(ctx, s.rdb, s.keys(), args...).Int()
	if err != nil {
		return false, s.unavailable("restoring", err)
	}
	return n == 1, nil
}

var claimScript = redis.NewScript(runHead + `
if redis.call('EXISTS', KEYS[5]) == 1 then return redis.call('GET', KEYS[5]) end
if confirmed() == '1' then redis.call('SET', KEYS[6], run()) end
redis.call('SET', KEYS[5], ARGV[1])
redis.call('INCR', KEYS[2])
return ARGV[1]`)

// ClaimTrust records fp as the layer's trust key requirement unless one
// is recorded, and returns the one in force. Recording it is a change
// (the version grows), so that running replicas read it.
func (s *RedisStore) ClaimTrust(ctx context.Context, fp string) (string, error) {
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	got, err := claimScript.Run(ctx, s.rdb, s.keys(), fp).Text()
	if err != nil {
		return "", s.unavailable("recording the trust key requirement", err)
	}
	return got, nil
}

// Put implements Store.
func (s *RedisStore) Put(ctx context.Context, label string, r refvalues.Record, c Change) (int64, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	approval, iat := "0", ""
	if !r.Withdrawn() {
		approval = "1"
	}
	if !c.IssuedAt.IsZero() {
		iat = strconv.FormatInt(c.IssuedAt.UnixMilli(), 10)
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	v, err := putScript.Run(ctx, s.rdb, s.keys(), label, string(b), approval, c.JTI, iat, r.At.UnixMilli(), c.TrustKey).Int64()
	if err != nil {
		return 0, s.unavailable("writing", err)
	}
	switch v {
	case -1:
		return 0, ErrApproved
	case -2, -3:
		return 0, ErrReplayed
	case -4:
		return 0, ErrTrustKey
	}
	return v, nil
}
