package challenge

import (
	"context"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// DefaultRedisPrefix prefixes the keys of a RedisStore.
const DefaultRedisPrefix = "trustgate:used:"

// RedisStore is a Store shared by every replica using the same Redis: a
// record is one key, created with SET NX and expiring with it, so that of
// several replicas consuming the same id at once exactly one succeeds.
type RedisStore struct {
	c      redis.UniversalClient
	prefix string
}

// NewRedisStore returns a RedisStore over c; prefix "" means
// DefaultRedisPrefix.
func NewRedisStore(c redis.UniversalClient, prefix string) *RedisStore {
	if prefix == "" {
		prefix = DefaultRedisPrefix
	}
	return &RedisStore{c: c, prefix: prefix}
}

// Consume implements Store. A record whose time has already passed is
// still written, for a second, so that a clock skew between replicas
// cannot reopen it at once.
func (r *RedisStore) Consume(ctx context.Context, id string, until time.Time) (bool, error) {
	ttl := time.Until(until)
	if ttl < time.Second {
		ttl = time.Second
	}
	ok, err := r.c.SetNX(ctx, r.prefix+id, 1, ttl).Result()
	if err != nil {
		return false, fmt.Errorf("redis SET NX: %w", err)
	}
	return ok, nil
}
