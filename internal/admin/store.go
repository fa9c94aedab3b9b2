package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
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

// Store keeps the admin layer: every replica of a fleet reads the same
// one (RedisStore), or a replica keeps its own (MemoryStore).
type Store interface {
	// Version is the layer's change counter (0: no change ever made).
	Version(ctx context.Context) (int64, error)
	// Load returns the whole layer and its version, read together.
	Load(ctx context.Context) (*refvalues.Overlay, error)
	// Put sets the record of label and returns the new version. An
	// approval of a label whose record already approves it is
	// ErrApproved (a withdrawal may replace anything).
	Put(ctx context.Context, label string, r refvalues.Record) (int64, error)
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
	o := &refvalues.Overlay{Version: s.o.Version, Records: make(map[string]refvalues.Record, len(s.o.Records))}
	for l, r := range s.o.Records {
		o.Records[l] = r
	}
	return o, nil
}

// Put implements Store.
func (s *MemoryStore) Put(_ context.Context, label string, r refvalues.Record) (int64, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if cur, ok := s.o.Records[label]; ok && !cur.Withdrawn() && !r.Withdrawn() {
		return 0, ErrApproved
	}
	if s.o.Records == nil {
		s.o.Records = map[string]refvalues.Record{}
	}
	s.o.Records[label] = r
	s.o.Version++
	return s.o.Version, nil
}

// DefaultRedisKey is where a RedisStore keeps the layer: a hash of label
// to record (JSON), with the version counter at DefaultRedisKey+":version".
// The hash tag keeps both in one slot of a Redis Cluster, as the script
// that changes them needs.
const DefaultRedisKey = "{trustgate:admin}:refvalues"

// RedisStore is the Store every replica using the same Redis shares. A
// change is one Lua script (set the record, increment the version), so a
// reader that sees a version sees the records of it. With Redis
// persistence (AOF), the layer survives restarts of Redis too.
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

var (
	loadScript = redis.NewScript(`
return {redis.call('GET', KEYS[2]) or '0', redis.call('HGETALL', KEYS[1])}`)
	putScript = redis.NewScript(`
if ARGV[3] == '1' then
  local cur = redis.call('HGET', KEYS[1], ARGV[1])
  if cur and cjson.decode(cur)['entry'] then return -1 end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return redis.call('INCR', KEYS[2])`)
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
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	res, err := loadScript.Run(ctx, s.rdb, []string{s.key, s.key + ":version"}).Slice()
	if err != nil {
		return nil, s.unavailable("loading", err)
	}
	if len(res) != 2 {
		return nil, s.unavailable("loading", fmt.Errorf("unexpected answer of %d items", len(res)))
	}
	vs, _ := res[0].(string)
	v, err := strconv.ParseInt(vs, 10, 64)
	if err != nil {
		return nil, fmt.Errorf("admin layer in redis: version is not a number")
	}
	kv, _ := res[1].([]any)
	o := &refvalues.Overlay{Version: v, Records: make(map[string]refvalues.Record, len(kv)/2)}
	for i := 0; i+1 < len(kv); i += 2 {
		label, _ := kv[i].(string)
		raw, _ := kv[i+1].(string)
		var r refvalues.Record
		if err := json.Unmarshal([]byte(raw), &r); err != nil {
			return nil, fmt.Errorf("admin layer in redis: the record of label %q does not decode: %w", label, err)
		}
		o.Records[label] = r
	}
	return o, nil
}

var restoreScript = redis.NewScript(`
if redis.call('EXISTS', KEYS[2]) == 1 then return 0 end
redis.call('DEL', KEYS[1])
for i = 2, #ARGV, 2 do redis.call('HSET', KEYS[1], ARGV[i], ARGV[i+1]) end
redis.call('SET', KEYS[2], ARGV[1])
return 1`)

// Restore writes o back, at o's version, if and only if the store holds no
// layer at all (no version: Redis lost its data and nobody has written
// since); it reports whether it did. A replica that still has the layer in
// force uses it so that replicas started after the loss do not approve
// what was withdrawn.
func (s *RedisStore) Restore(ctx context.Context, o *refvalues.Overlay) (bool, error) {
	args := []any{o.Version}
	for label, r := range o.Records {
		b, err := json.Marshal(r)
		if err != nil {
			return false, err
		}
		args = append(args, label, string(b))
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	n, err := restoreScript.Run(ctx, s.rdb, []string{s.key, s.key + ":version"}, args...).Int()
	if err != nil {
		return false, s.unavailable("restoring", err)
	}
	return n == 1, nil
}

// Put implements Store.
func (s *RedisStore) Put(ctx context.Context, label string, r refvalues.Record) (int64, error) {
	b, err := json.Marshal(r)
	if err != nil {
		return 0, err
	}
	mustNew := "0"
	if !r.Withdrawn() {
		mustNew = "1"
	}
	ctx, cancel := context.WithTimeout(ctx, s.timeout)
	defer cancel()
	v, err := putScript.Run(ctx, s.rdb, []string{s.key, s.key + ":version"}, label, string(b), mustNew).Int64()
	if err != nil {
		return 0, s.unavailable("writing", err)
	}
	if v < 0 {
		return 0, ErrApproved
	}
	return v, nil
}
