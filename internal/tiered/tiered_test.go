package tiered

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A record fetched at t0, valid for ten days, is fresh for half of them
// (or MaxAge), then stale for at most maxStale and never past its end.
func TestLifetime(t *testing.T) {
	t.Parallel()
	t0 := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	day := 24 * time.Hour
	until := t0.Add(10 * day)
	for _, tc := range []struct {
		name              string
		fetched           time.Time
		maxAge, maxStale  time.Duration
		refresh, lastUsed time.Time
	}{
		{"half the validity", t0, 0, 2 * day, t0.Add(5 * day), t0.Add(7 * day)},
		{"max age first", t0, day, 2 * day, t0.Add(day), t0.Add(3 * day)},
		{"staleness capped at the end", t0, 0, 30 * day, t0.Add(5 * day), until},
		{"no stale serving", t0, 0, -1, t0.Add(5 * day), t0.Add(5 * day)},
		{"fetched in the future counts from now", t0.Add(2 * day), 0, 2 * day, t0.Add(5 * day), t0.Add(7 * day)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var l Lifetime
			l.Set(tc.fetched, t0, until, 0.5, tc.maxAge, StaleFor(tc.maxStale, until))
			if !l.RefreshAt.Equal(tc.refresh) || !l.UsableTill.Equal(tc.lastUsed) {
				t.Fatalf("refresh at %s, usable till %s; want %s, %s", l.RefreshAt, l.UsableTill, tc.refresh, tc.lastUsed)
			}
			checks := map[time.Time]Freshness{
				tc.refresh.Add(-time.Nanosecond): Fresh, tc.lastUsed.Add(time.Nanosecond): Expired,
			}
			if tc.lastUsed.After(tc.refresh) {
				checks[tc.refresh], checks[tc.lastUsed] = Stale, Stale
			}
			for at, want := range checks {
				if got := l.State(at); got != want {
					t.Errorf("state at %s: %v, want %v", at, got, want)
				}
			}
		})
	}
}

type testRecord struct {
	Body string `json:"body"`
}

// The disk tier gives back what it was given; a record it cannot trust
// (unknown field, too large, refused by Check) is an error that names no
// path; a miss is (nil, nil).
func TestDiskRecords(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	d := &Disk[testRecord]{Dir: dir, Codec: Codec[testRecord]{MaxSize: 64, Check: func(r *testRecord) error {
		if r.Body == "" {
			return errors.New("empty")
		}
		return nil
	}}}
	ctx := context.Background()
	if r, err := d.Get(ctx, "a/b"); r != nil || err != nil {
		t.Fatalf("miss: %v, %v", r, err)
	}
	if err := d.Put(ctx, "a/b", &testRecord{Body: "x"}, 0); err != nil {
		t.Fatal(err)
	}
	if r, err := d.Get(ctx, "a/b"); err != nil || r.Body != "x" {
		t.Fatalf("read back %v, %v", r, err)
	}
	for name, content := range map[string]string{
		"unknown field": `{"body":"x","extra":1}`,
		"too large":     `{"body":"` + strings.Repeat("x", 100) + `"}`,
		"refused":       `{"body":""}`,
	} {
		p := filepath.Join(dir, "v1", "bad.json")
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		r, err := d.Get(ctx, "bad")
		if err == nil || r != nil || strings.Contains(err.Error(), dir) {
			t.Errorf("%s: %v, %v", name, r, err)
		}
	}
	if err := d.DelPrefix(ctx, "a/"); err != nil {
		t.Fatal(err)
	}
	if r, err := d.Get(ctx, "a/b"); r != nil || err != nil {
		t.Fatalf("after DelPrefix: %v, %v", r, err)
	}
}

// Every violation of the shared settings is reported, each once.
func TestCheckSettings(t *testing.T) {
	t.Parallel()
	if err := CheckSettings("KDS", []string{"https://kds.example"}, 0.5, []int{0, 1}, []time.Duration{0, time.Second}); err != nil {
		t.Fatalf("valid settings: %v", err)
	}
	err := CheckSettings("PCS", []string{"https://ok.example", "ftp://x", "no-scheme"}, 1.5, []int{1, -1}, []time.Duration{-time.Second, -1})
	if err == nil {
		t.Fatal("invalid settings accepted")
	}
	for _, want := range []string{`PCS URL "ftp://x"`, `PCS URL "no-scheme"`, "refresh fraction 1.5", "counts must not be negative", "timeouts and backoffs"} {
		if strings.Count(err.Error(), want) != 1 {
			t.Errorf("%q not reported once in %v", want, err)
		}
	}
}

// Settings.Default gives the zero fields the service's defaults and this
// package's, and leaves set ones; Check covers the shared fields and the
// service's own.
func TestSettingsDefaultAndCheck(t *testing.T) {
	t.Parallel()
	s := Settings{RateBurst: 7, FetchWait: -1}
	s.Default(Defaults{RateInterval: 3 * time.Second, RateBurst: 2, Attempts: 5, RedisPrefix: "p:"})
	if s.RateInterval != 3*time.Second || s.RateBurst != 7 || s.Attempts != 5 || s.RedisPrefix != "p:" {
		t.Errorf("service defaults: %+v", s)
	}
	if s.RequestTimeout != DefaultRequestTimeout || s.FetchTimeout != DefaultFetchTimeout || s.MaxHoldBack != DefaultMaxHoldBack ||
		s.MaxStaleness != DefaultMaxStaleness || s.RefreshFraction != DefaultRefreshFraction || s.FetchWait != -1 {
		t.Errorf("package defaults: %+v", s)
	}
	if err := s.Check("KDS", []string{"https://kds.example"}, []int{1}, nil); err != nil {
		t.Fatalf("valid settings: %v", err)
	}
	bad := s
	bad.Backoff = -time.Second
	if err := bad.Check("KDS", []string{"https://kds.example"}, nil, nil); err == nil || !strings.Contains(err.Error(), "timeouts and backoffs") {
		t.Errorf("negative Backoff: %v", err)
	}
	if err := s.Check("KDS", []string{"https://kds.example"}, []int{-1}, nil); err == nil || !strings.Contains(err.Error(), "counts must not be negative") {
		t.Errorf("negative own count: %v", err)
	}
}
