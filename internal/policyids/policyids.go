// Package policyids records the appraisal-policy-ids a verifier, and with
// Redis its whole fleet, has had in force, so that a release can refuse a
// token whose ear.appraisal-policy-id the fleet never had in force around
// the time the token was issued (docs/api.md, "What a release checks").
//
// A release does not re-check the current appraisal-policy-id: a token
// appraised under a policy that has since been replaced still releases
// within its lifetime (token_lifetime, 60 s by default), so that a policy
// change, or a rolling one across replicas, does not refuse the boots in
// flight. What it refuses is a policy id that was not in force within
// Grace before the token was issued: a token signed with a shared token key
// by another deployment, or under a policy long replaced.
package policyids

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustgate/trustgate/internal/challenge"
)

// Grace is how long before a token's issue time its policy id must last
// have been seen in force: more than the fleet's record of it can lag
// (written at start, at each change and every store probe, 1 s) plus any
// clock skew between replicas.
const Grace = time.Minute

// maxLocal bounds the ids one process remembers; the oldest goes first.
const maxLocal = 1024

// keep is how long the fleet's record keeps an id no replica has had in
// force since.
const keep = 24 * time.Hour

// Set remembers, in memory, when each appraisal-policy-id was last in
// force here: every read of the current id (ID) records it at that time.
// With a Fleet it also records the ids fleet-wide. Safe for concurrent use.
type Set struct {
	cur   func() string
	now   func() time.Time
	fleet *Fleet

	mu      sync.Mutex
	seen    map[string]time.Time
	written string    // the id last recorded in the fleet
	failed  time.Time // when ID last failed to record a new id
	trying  string    // the id ID last began to record, at tryAt
	tryAt   time.Time
}

// New returns a Set over cur, the id of the policy in force; now is the
// clock (nil: time.Now); fleet, when not nil, is the fleet-wide record.
func New(cur func() string, now func() time.Time, fleet *Fleet) *Set {
	if now == nil {
		now = time.Now
	}
	s := &Set{cur: cur, now: now, fleet: fleet, seen: map[string]time.Time{}}
	s.ID()
	return s
}

// ID returns the id in force and records it as in force now. The first
// read of a new id also records it in the fleet (one round trip, only on
// a change, and not within a second of a failed try; a failure is retried by Refresh).
func (s *Set) ID() string {
	id := s.cur()
	now := s.now()
	s.mu.Lock()
	if len(s.seen) >= maxLocal {
		if _, ok := s.seen[id]; !ok {
			s.evictOldest()
		}
	}
	s.seen[id] = now
	// one try a second from here (the reads that come while it is under
	// way do not start their own, and a Redis that does not answer must
	// not stall every read of the id); Refresh retries
	write := s.fleet != nil && s.written != id && now.Sub(s.failed) >= time.Second &&
		(s.trying != id || now.Sub(s.tryAt) >= time.Second)
	if write {
		s.trying, s.tryAt = id, now
	}
	s.mu.Unlock()
	if write && s.record(context.Background(), id, now) != nil {
		s.mu.Lock()
		s.failed = now
		s.mu.Unlock()
	}
	return id
}

func (s *Set) evictOldest() {
	var oldest string
	var at time.Time
	for k, t := range s.seen {
		if oldest == "" || t.Before(at) {
			oldest, at = k, t
		}
	}
	delete(s.seen, oldest)
}

func (s *Set) record(ctx context.Context, id string, at time.Time) error {
	err := s.fleet.Record(ctx, id, at)
	if err == nil {
		s.mu.Lock()
		s.written = id
		s.mu.Unlock()
	}
	return err
}

// Refresh records the id in force as in force now, here and in the fleet
// (a server calls it with every store probe).
func (s *Set) Refresh(ctx context.Context) error {
	id := s.cur()
	now := s.now()
	s.mu.Lock()
	s.seen[id] = now
	s.mu.Unlock()
	if s.fleet == nil {
		return nil
	}
	return s.record(ctx, id, now)
}

// InForce reports whether id was in force here at issued - Grace or later.
func (s *Set) InForce(id string, issued time.Time) bool {
	if id == s.cur() {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	at, ok := s.seen[id]
	return ok && !at.Before(issued.Add(-Grace))
}

// Fleet returns the fleet-wide record, or nil.
func (s *Set) Fleet() *Fleet { return s.fleet }

// Fleet is the fleet-wide record: one Redis hash, field an id, value the
// Unix ms it was last in force at some replica. Its key shares the
// single-use store's prefix, so that the release script, which consumes
// the token's id, reads it in the same step (Joint).
type Fleet struct {
	c       redis.UniversalClient
	key     string
	timeout time.Duration
}

// NewFleet returns the record over c, under the single-use store's prefix
// (challenge.RedisStore.Prefix); timeout bounds a write.
func NewFleet(c redis.UniversalClient, prefix string, timeout time.Duration) *Fleet {
	return &Fleet{c: c, key: prefix + "policies", timeout: timeout}
}

// recordScript: KEYS[1] the hash; ARGV[1] the id, ARGV[2] the time, Unix
// ms, ARGV[3] the oldest time kept. It keeps the later time of an id, and
// drops the ids last in force before ARGV[3].
var recordScript = redis.NewScript(`
local at = tonumber(ARGV[2])
local old = tonumber(redis.call('HGET', KEYS[1], ARGV[1]))
if not old or old < at then redis.call('HSET', KEYS[1], ARGV[1], at) end
local all = redis.call('HGETALL', KEYS[1])
local oldest = tonumber(ARGV[3])
for i = 1, #all, 2 do
  if tonumber(all[i + 1]) < oldest then redis.call('HDEL', KEYS[1], all[i]) end
end
return 1
`)

// Record records id as in force at at.
func (f *Fleet) Record(ctx context.Context, id string, at time.Time) error {
	ctx, cancel := context.WithTimeout(ctx, f.timeout)
	defer cancel()
	if err := recordScript.Run(ctx, f.c, []string{f.key}, id, at.UnixMilli(), at.Add(-keep).UnixMilli()).Err(); err != nil {
		return fmt.Errorf("redis: recording the appraisal-policy-id in force: %w", err)
	}
	return nil
}

// inForce is the joint of the release script: it refuses the token's
// record unless its policy id (argv[5]) was last in force at argv[6] (Unix
// ms) or later.
var inForce = challenge.NewJointScript(`
local function joint_check(key, argv)
  local at = tonumber(redis.call('HGET', key, argv[5]))
  if not at or at < tonumber(argv[6]) then return {0} end
  return nil, nil
end
local function joint_write(key, argv, state) return {} end
`)

// Joint is the check, done by the script that records the token's use
// (challenge.RedisStore.ConsumeJoint), that id was in force in the fleet
// at issued - Grace or later: a refusal is challenge.ErrJointRefused.
func (f *Fleet) Joint(id string, issued time.Time) *challenge.Joint {
	return &challenge.Joint{Script: inForce, Key: f.key, Args: []any{id, issued.Add(-Grace).UnixMilli()}}
}
