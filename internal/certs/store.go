package certs

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustgate/trustgate/internal/atomicfile"
)

// record is what the persistent tiers hold per certificate or CRL: the
// DER bytes as the KDS served them and when they were fetched (freshness
// is counted from then).
type record struct {
	DER       []byte    `json:"der"`
	FetchedAt time.Time `json:"fetched_at"`
}

// maxRecordSize bounds a record read from a tier (a CRL is the largest).
const maxRecordSize = 2*maxCRLSize + 4<<10

func (r *record) marshal() ([]byte, error) { return json.Marshal(r) }

func unmarshalRecord(b []byte) (*record, error) {
	var r record
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&r); err != nil {
		return nil, fmt.Errorf("corrupt cache record: %w", err)
	}
	if len(r.DER) == 0 || r.FetchedAt.IsZero() {
		return nil, errors.New("corrupt cache record: no certificate or fetch time")
	}
	return &r, nil
}

// store is a persistent tier: the disk or Redis. Keys are slash-separated
// names such as "vcek/Milan/<hwid>-<tcb>" or "crl/vcek-Milan"; they hold
// chip ids and are never logged. A miss is (nil, nil).
type store interface {
	kind() string
	get(ctx context.Context, key string) (*record, error)
	// put stores r; ttl > 0 lets the tier drop it after that long.
	put(ctx context.Context, key string, r *record, ttl time.Duration) error
	del(ctx context.Context, key string) error
	// delPrefix deletes every key under prefix, which ends in "/".
	delPrefix(ctx context.Context, prefix string) error
}

// diskStore keeps one JSON file per record under dir/v1, written to a
// temporary file and renamed into place, so that a reader sees the old
// record or the new one, never half of one.
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
		return nil, pathless(err)
	}
	defer f.Close()
	var buf bytes.Buffer
	if _, err := buf.ReadFrom(io.LimitReader(f, maxRecordSize+1)); err != nil {
		return nil, pathless(err)
	}
	if buf.Len() > maxRecordSize {
		return nil, errors.New("cache record too large")
	}
	return unmarshalRecord(buf.Bytes())
}

func (d *diskStore) put(_ context.Context, key string, r *record, _ time.Duration) error {
	b, err := r.marshal()
	if err != nil {
		return err
	}
	p := d.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return pathless(err)
	}
	return pathless(atomicfile.Write(p, b, 0o600))
}

func (d *diskStore) del(_ context.Context, key string) error {
	if err := os.Remove(d.path(key)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return pathless(err)
	}
	return nil
}

func (d *diskStore) delPrefix(_ context.Context, prefix string) error {
	return pathless(os.RemoveAll(filepath.Join(d.dir, "v1", filepath.FromSlash(strings.TrimSuffix(prefix, "/")))))
}

// pathless drops the file name from an os error: cache paths hold chip
// ids, which are never logged.
func pathless(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("cache file %s: %w", pe.Op, pe.Err)
	}
	var le *os.LinkError
	if errors.As(err, &le) {
		return fmt.Errorf("cache file %s: %w", le.Op, le.Err)
	}
	return err
}

// redisStore keeps records in Redis under prefix+key, so that replicas
// share what one of them fetched.
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
	b, err := rec.marshal()
	if err != nil {
		return err
	}
	if ttl < 0 {
		return r.del(ctx, key)
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

func (r *redisStore) delPrefix(ctx context.Context, prefix string) error {
	iter := r.c.Scan(ctx, 0, r.prefix+prefix+"*", 256).Iterator()
	var keys []string
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		err := r.c.Del(ctx, keys...).Err()
		keys = keys[:0]
		if err != nil {
			return fmt.Errorf("redis DEL: %w", err)
		}
		return nil
	}
	for iter.Next(ctx) {
		keys = append(keys, iter.Val())
		if len(keys) >= 256 {
			if err := flush(); err != nil {
				return err
			}
		}
	}
	if err := iter.Err(); err != nil {
		return fmt.Errorf("redis SCAN: %w", err)
	}
	return flush()
}
