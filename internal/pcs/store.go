package pcs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustgate/trustgate/internal/atomicfile"
)

// record is what the persistent tiers hold per document: the body as PCS
// served it, the issuer chain of its response (PEM), and when it was
// fetched (freshness is counted from then).
type record struct {
	Body      []byte    `json:"body"`
	Chain     []byte    `json:"chain,omitempty"`
	FetchedAt time.Time `json:"fetched_at"`
}

// maxRecordSize bounds a record read from a tier.
const maxRecordSize = 2*(maxBody+maxChain) + 4<<10

func unmarshalRecord(b []byte) (*record, error) {
	var r record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("corrupt cache record: %w", err)
	}
	if len(r.Body) == 0 || r.FetchedAt.IsZero() {
		return nil, errors.New("corrupt cache record: no document or fetch time")
	}
	return &r, nil
}

// store is a persistent tier. Keys are names such as "tcb/00806F050000",
// "qe", "pckcrl/platform", "rootcrl". A miss is (nil, nil).
type store interface {
	kind() string
	get(ctx context.Context, key string) (*record, error)
	// put stores r; ttl > 0 lets the tier drop it after that long.
	put(ctx context.Context, key string, r *record, ttl time.Duration) error
	del(ctx context.Context, key string) error
}

// diskStore keeps one JSON file per record under dir/v1, written to a
// temporary file and renamed into place.
type diskStore struct{ dir string }

func (d *diskStore) kind() string { return "disk" }

func (d *diskStore) path(key string) string {
	return filepath.Join(d.dir, "v1", filepath.FromSlash(key)+".json")
}

func (d *diskStore) get(_ context.Context, key string) (*record, error) {
	f, err := os.Open(d.path(key))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxRecordSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxRecordSize {
		return nil, errors.New("cache record too large")
	}
	return unmarshalRecord(b)
}

func (d *diskStore) put(_ context.Context, key string, r *record, _ time.Duration) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	p := d.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return err
	}
	return atomicfile.Write(p, b, 0o600)
}

func (d *diskStore) del(_ context.Context, key string) error {
	if err := os.Remove(d.path(key)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	return nil
}

// redisStore keeps records in Redis under prefix+key, shared by replicas.
type redisStore struct {
	c      redis.UniversalClient
	prefix string
}

func (r *redisStore) kind() string { return "redis" }

func (r *redisStore) get(ctx context.Context, key string) (*record, error) {
	b, err := r.c.Get(ctx, r.prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redis GET: %w", err)
	}
	if len(b) > maxRecordSize {
		return nil, errors.New("cache record too large")
	}
	return unmarshalRecord(b)
}

func (r *redisStore) put(ctx context.Context, key string, rec *record, ttl time.Duration) error {
	if ttl <= 0 {
		return nil // past its nextUpdate: not worth sharing
	}
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if err := r.c.Set(ctx, r.prefix+key, b, ttl).Err(); err != nil {
		return fmt.Errorf("redis SET: %w", err)
	}
	return nil
}

func (r *redisStore) del(ctx context.Context, key string) error {
	if err := r.c.Del(ctx, r.prefix+key).Err(); err != nil {
		return fmt.Errorf("redis DEL: %w", err)
	}
	return nil
}
