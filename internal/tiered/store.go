package tiered

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

// Store is a persistent tier of records of type R: the disk or Redis.
// Keys are slash-separated names such as "vcek/Milan/<hwid>-<tcb>" or
// "tcb/00806F050000"; they may hold chip ids and are never logged. A miss
// is (nil, nil).
type Store[R any] interface {
	Kind() string
	Get(ctx context.Context, key string) (*R, error)
	// Put stores r; ttl > 0 lets the tier drop it after that long, ttl < 0
	// (a record already past its use) deletes what the tier holds.
	Put(ctx context.Context, key string, r *R, ttl time.Duration) error
	Del(ctx context.Context, key string) error
	// DelPrefix deletes every key under prefix, which ends in "/".
	DelPrefix(ctx context.Context, prefix string) error
}

// Codec reads and writes the records of a tier as JSON: unknown fields
// are refused, and so is a record larger than MaxSize bytes or one that
// Check refuses.
type Codec[R any] struct {
	MaxSize int
	Check   func(*R) error
}

func (c Codec[R]) decode(b []byte) (*R, error) {
	if len(b) > c.MaxSize {
		return nil, errors.New("cache record too large")
	}
	r := new(R)
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(r); err != nil {
		return nil, fmt.Errorf("corrupt cache record: %w", err)
	}
	if err := c.Check(r); err != nil {
		return nil, fmt.Errorf("corrupt cache record: %w", err)
	}
	return r, nil
}

// Disk keeps one JSON file per record under Dir/v1, written to a
// temporary file and renamed into place, so that a reader sees the old
// record or the new one, never half of one. Its errors name no path.
type Disk[R any] struct {
	Dir   string
	Codec Codec[R]
}

func (d *Disk[R]) Kind() string { return "disk" }

func (d *Disk[R]) path(key string) string {
	return filepath.Join(d.Dir, "v1", filepath.FromSlash(key)+".json")
}

func (d *Disk[R]) Get(_ context.Context, key string) (*R, error) {
	f, err := os.Open(d.path(key))
	if errors.Is(err, os.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, pathless(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, int64(d.Codec.MaxSize)+1))
	if err != nil {
		return nil, pathless(err)
	}
	return d.Codec.decode(b)
}

func (d *Disk[R]) Put(_ context.Context, key string, r *R, _ time.Duration) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	p := d.path(key)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return pathless(err)
	}
	return pathless(atomicfile.Write(p, b, 0o600))
}

func (d *Disk[R]) Del(_ context.Context, key string) error {
	if err := os.Remove(d.path(key)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return pathless(err)
	}
	return nil
}

func (d *Disk[R]) DelPrefix(_ context.Context, prefix string) error {
	return pathless(os.RemoveAll(filepath.Join(d.Dir, "v1", filepath.FromSlash(strings.TrimSuffix(prefix, "/")))))
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

// Redis keeps records in Redis under Prefix+key, so that replicas share
// what one of them fetched.
type Redis[R any] struct {
	Client redis.UniversalClient
	Prefix string
	Codec  Codec[R]
}

func (r *Redis[R]) Kind() string { return "redis" }

func (r *Redis[R]) Get(ctx context.Context, key string) (*R, error) {
	b, err := r.Client.Get(ctx, r.Prefix+key).Bytes()
	if errors.Is(err, redis.Nil) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("redis GET: %w", err)
	}
	return r.Codec.decode(b)
}

func (r *Redis[R]) Put(ctx context.Context, key string, rec *R, ttl time.Duration) error {
	b, err := json.Marshal(rec)
	if err != nil {
		return err
	}
	if ttl < 0 {
		return r.Del(ctx, key)
	}
	if err := r.Client.Set(ctx, r.Prefix+key, b, ttl).Err(); err != nil {
		return fmt.Errorf("redis SET: %w", err)
	}
	return nil
}

func (r *Redis[R]) Del(ctx context.Context, key string) error {
	if err := r.Client.Del(ctx, r.Prefix+key).Err(); err != nil {
		return fmt.Errorf("redis DEL: %w", err)
	}
	return nil
}

func (r *Redis[R]) DelPrefix(ctx context.Context, prefix string) error {
	iter := r.Client.Scan(ctx, 0, r.Prefix+prefix+"*", 256).Iterator()
	var keys []string
	flush := func() error {
		if len(keys) == 0 {
			return nil
		}
		err := r.Client.Del(ctx, keys...).Err()
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
