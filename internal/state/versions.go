package state

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"
)

// Mark is a document's version and the digest of its content.
type Mark struct {
	Version int64  `json:"version"`
	Digest  string `json:"digest"`
}

// RollbackError is a document older than one seen before: a lower
// version, or the same version with other content.
type RollbackError struct {
	// Name is the document (e.g. "reference_values").
	Name string
	// Got is the document offered; Seen the highest one seen; Where says
	// who remembered it ("this replica" or "the fleet (redis)").
	Got, Seen Mark
	Where     string
}

// Error implements error. It names versions only, never content.
func (e *RollbackError) Error() string {
	if e.Got.Version == e.Seen.Version {
		return fmt.Sprintf("%s version %d differs from the version %d %s has seen (same version, other content)", e.Name, e.Got.Version, e.Seen.Version, e.Where)
	}
	return fmt.Sprintf("%s version %d is older than version %d, which %s has seen", e.Name, e.Got.Version, e.Seen.Version, e.Where)
}

// DefaultRedisKey is the hash where the fleet keeps its marks (fields
// NAME:v and NAME:d).
const DefaultRedisKey = "{trustgate:state}:versions"

// VersionsOptions configure Versions. Dir is required.
type VersionsOptions struct {
	Dir *Dir
	// Redis, if not nil, keeps the fleet's marks: a replica with an empty
	// state directory still refuses what the fleet has left behind.
	Redis redis.UniversalClient
	// Timeout bounds each Redis call; 0 means one second.
	Timeout time.Duration
	// Logger nil means slog.Default().
	Logger *slog.Logger
}

// Versions remembers the highest version seen of each document.
type Versions struct {
	o  VersionsOptions
	mu sync.Mutex
}

// NewVersions returns Versions over o.
func NewVersions(o VersionsOptions) *Versions {
	if o.Timeout <= 0 {
		o.Timeout = time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return &Versions{o: o}
}

// raiseScript raises the mark of ARGV[1] to (ARGV[2], ARGV[3]) unless it
// is higher, or equal with another digest; it returns the mark in force.
var raiseScript = redis.NewScript(`
local v = tonumber(redis.call('HGET', KEYS[1], ARGV[1] .. ':v') or '-1')
local d = redis.call('HGET', KEYS[1], ARGV[1] .. ':d') or ''
local nv = tonumber(ARGV[2])
if nv < v or (nv == v and d ~= ARGV[3]) then return {tostring(v), d} end
if nv > v then redis.call('HSET', KEYS[1], ARGV[1] .. ':v', ARGV[2], ARGV[1] .. ':d', ARGV[3]) end
return {ARGV[2], ARGV[3]}`)

// Admit checks m, the mark of document name, against the highest seen
// (in the state directory, then in Redis) and raises both to m when m is
// not below them. A rollback is a *RollbackError and raises nothing. A
// Redis that does not answer is logged and m is judged by the state
// directory alone (the fleet's mark is raised at the next Admit); an
// error writing the state directory is returned.
func (v *Versions) Admit(ctx context.Context, name string, m Mark) error {
	v.mu.Lock()
	defer v.mu.Unlock()
	marks := map[string]Mark{}
	if _, err := v.o.Dir.Read("versions", &marks); err != nil {
		return err
	}
	if seen, ok := marks[name]; ok && below(m, seen) {
		return &RollbackError{Name: name, Got: m, Seen: seen, Where: "this replica"}
	}
	if v.o.Redis != nil {
		seen, err := v.raise(ctx, name, m)
		switch {
		case err != nil:
			v.o.Logger.Warn("redis did not answer: the version is checked against this replica's state directory only", "document", name, "version", m.Version, "error", err.Error())
		case seen != m:
			return &RollbackError{Name: name, Got: m, Seen: seen, Where: "the fleet (redis)"}
		}
	}
	if seen, ok := marks[name]; !ok || m.Version > seen.Version {
		marks[name] = m
		return v.o.Dir.Write("versions", marks)
	}
	return nil
}

// below reports whether m is a rollback from seen.
func below(m, seen Mark) bool {
	return m.Version < seen.Version || (m.Version == seen.Version && m.Digest != seen.Digest)
}

func (v *Versions) raise(ctx context.Context, name string, m Mark) (Mark, error) {
	ctx, cancel := context.WithTimeout(ctx, v.o.Timeout)
	defer cancel()
	res, err := raiseScript.Run(ctx, v.o.Redis, []string{DefaultRedisKey}, name, strconv.FormatInt(m.Version, 10), m.Digest).StringSlice()
	if err != nil {
		return Mark{}, err
	}
	if len(res) != 2 {
		return Mark{}, errors.New("unexpected answer")
	}
	n, err := strconv.ParseInt(res[0], 10, 64)
	if err != nil {
		return Mark{}, err
	}
	return Mark{Version: n, Digest: res[1]}, nil
}
