package tiered

import (
	"context"
	"log/slog"
	"net/http"
	"time"

	"github.com/redis/go-redis/v9"
)

// Settings is what every service over this cache is configured with: the
// origin's client, the tiers below memory, the clock, and the rate and
// timing of fetches. A service embeds it in its Config, beside what is its
// own (URLs, roots, budgets). Every zero field means the default named
// beside it: the service's own (Defaults) where said, else this package's.
type Settings struct {
	// HTTPClient makes the origin's requests; nil means a plain
	// http.Client (each request is bounded by RequestTimeout). Redirects
	// are never followed whatever it says.
	HTTPClient *http.Client
	// Offline never contacts the origin: only what the tiers hold
	// (fetched earlier or imported from a bundle) is served.
	Offline bool

	// Dir is the disk tier's directory; "" means the service's DefaultDir.
	// When that cannot be determined the disk tier is off and a warning
	// is logged.
	Dir string
	// NoDisk turns the disk tier off.
	NoDisk bool
	// Redis, when non-nil, is a tier shared by replicas; Redis errors are
	// logged and the other tiers and the origin are used.
	Redis redis.UniversalClient
	// RedisPrefix prefixes the Redis keys; "" means the service's default.
	RedisPrefix string

	// Clock is the wall clock for validity, freshness and staleness; nil
	// means time.Now.
	Clock func() time.Time
	// Sleep waits for d or until ctx ends. nil means a real timer, and the
	// rate limiter and retries then measure time with time.Now whatever
	// Clock is; when Sleep is set they use Clock (tests set both).
	Sleep func(ctx context.Context, d time.Duration) error
	// Logger receives warnings (stale serving, origin failures); nil means
	// none. Chip ids are never logged.
	Logger *slog.Logger

	// RateInterval is the time per origin request of each rate bucket; 0
	// means the service's default, negative means no limit.
	RateInterval time.Duration
	// RateBurst is how many requests a bucket saves up; 0 means the
	// service's default.
	RateBurst int
	// RequestTimeout bounds one HTTP request; 0 means DefaultRequestTimeout.
	RequestTimeout time.Duration
	// FetchTimeout bounds a fetch with its retries; 0 means
	// DefaultFetchTimeout.
	FetchTimeout time.Duration
	// Attempts is how many times a failing request is tried; 0 means the
	// service's default.
	Attempts int
	// Backoff is the first retry's backoff, doubled per retry up to
	// MaxBackoff, each drawn from [d/2, d]; 0 means DefaultBackoff and
	// DefaultMaxBackoff.
	Backoff, MaxBackoff time.Duration
	// MaxRetryAfter is the longest Retry-After waited for within a fetch;
	// 0 means DefaultMaxRetryAfter.
	MaxRetryAfter time.Duration
	// MaxHoldBack caps how long a Retry-After holds every request back (a
	// longer one is capped, and that is logged); 0 means
	// DefaultMaxHoldBack.
	MaxHoldBack time.Duration
	// FetchWait bounds how long a lookup waits for fetches; all the waits
	// of one API request together when its context carries
	// attest.WithClient. Then the lookup fails (its error carries a
	// Retry-After hint, see attest.RetryAfter) while the fetch goes on in
	// the background until FetchTimeout, so that a retry finds the record
	// cached. 0 means DefaultFetchWait, negative means waiting for the
	// fetch to end (for CLIs).
	FetchWait time.Duration

	// RefreshFraction in (0, 1]: a record fetched at F with validity until
	// U is refreshed from F + RefreshFraction*(U-F) on; 0 means
	// DefaultRefreshFraction.
	RefreshFraction float64
	// MaxStaleness is how long past its refresh point a record is served
	// when it cannot be refreshed; 0 means DefaultMaxStaleness, negative
	// means no stale serving.
	MaxStaleness time.Duration
}

// Defaults are a service's own defaults for the zero fields of Settings
// whose default is not this package's.
type Defaults struct {
	RateInterval time.Duration
	RateBurst    int
	Attempts     int
	RedisPrefix  string
}

// Default sets every zero field of s to its default: d's or this
// package's.
func (s *Settings) Default(d Defaults) {
	DefaultRate(&s.RateInterval, d.RateInterval, &s.RateBurst, d.RateBurst, &s.Attempts, d.Attempts)
	DefaultTiming(&s.RequestTimeout, &s.FetchTimeout, &s.Backoff, &s.MaxBackoff, &s.MaxRetryAfter, &s.MaxHoldBack, &s.FetchWait, &s.MaxStaleness, &s.RefreshFraction)
	Or(&s.RedisPrefix, d.RedisPrefix)
}

// Check is CheckSettings on s (its defaults applied) with the service's
// origin URLs and its own counts and durations besides.
func (s *Settings) Check(origin string, urls []string, counts []int, durations []time.Duration) error {
	return CheckSettings(origin, urls, s.RefreshFraction, append([]int{s.RateBurst, s.Attempts}, counts...),
		append([]time.Duration{s.RequestTimeout, s.FetchTimeout, s.Backoff, s.MaxBackoff, s.MaxRetryAfter, s.MaxHoldBack}, durations...))
}

// Origin returns the origin client s describes (see NewOrigin), named
// name, whose 404s are notFound, with now as its clock.
func (s *Settings) Origin(name string, notFound error, now func() time.Time) *Origin {
	return NewOrigin(Origin{Name: name, HTTP: s.HTTPClient, Log: s.Logger, Now: now, Sleep: s.Sleep, NotFound: notFound,
		RequestTimeout: s.RequestTimeout, Attempts: s.Attempts, Backoff: s.Backoff, MaxBackoff: s.MaxBackoff, MaxRetryAfter: s.MaxRetryAfter, MaxHoldBack: s.MaxHoldBack})
}
