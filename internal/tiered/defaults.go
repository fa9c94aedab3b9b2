package tiered

import "time"

// The defaults both services (certs, pcs) give the zero fields of their
// Config that mean the same in both.
const (
	// DefaultRequestTimeout bounds one HTTP request to the origin.
	DefaultRequestTimeout = 20 * time.Second
	// DefaultFetchTimeout bounds one fetch with all its retries and waits.
	DefaultFetchTimeout = 2 * time.Minute
	// DefaultBackoff doubles per retry (with jitter) up to DefaultMaxBackoff.
	DefaultBackoff    = time.Second
	DefaultMaxBackoff = 30 * time.Second
	// DefaultMaxRetryAfter is the longest Retry-After waited for within a
	// fetch; a longer one fails the fetch at once (and still holds every
	// request back).
	DefaultMaxRetryAfter = 2 * time.Minute
	// DefaultMaxHoldBack caps a Retry-After: however long the origin asks
	// for (a day has been seen from the KDS), requests are held back at
	// most an hour, and the cap is logged.
	DefaultMaxHoldBack = time.Hour
	// DefaultFetchWait is how long a lookup waits for a fetch before it
	// fails (the fetch goes on in the background); well inside an HTTP
	// server's write timeout.
	DefaultFetchWait = 10 * time.Second
	// DefaultRefreshFraction: refresh a cached record once half of the
	// validity it had left when fetched has passed.
	DefaultRefreshFraction = 0.5
	// DefaultMaxStaleness is how long past its refresh point a record is
	// still served while the origin cannot be reached.
	DefaultMaxStaleness = 7 * 24 * time.Hour
)

// DefaultTiming sets each of the Config fields given that is zero to its
// default above.
func DefaultTiming(requestTimeout, fetchTimeout, backoff, maxBackoff, maxRetryAfter, maxHoldBack, fetchWait, maxStaleness *time.Duration, refreshFraction *float64) {
	for _, d := range []struct {
		p   *time.Duration
		def time.Duration
	}{
		{requestTimeout, DefaultRequestTimeout}, {fetchTimeout, DefaultFetchTimeout},
		{backoff, DefaultBackoff}, {maxBackoff, DefaultMaxBackoff},
		{maxRetryAfter, DefaultMaxRetryAfter}, {maxHoldBack, DefaultMaxHoldBack},
		{fetchWait, DefaultFetchWait}, {maxStaleness, DefaultMaxStaleness},
	} {
		if *d.p == 0 {
			*d.p = d.def
		}
	}
	if *refreshFraction == 0 {
		*refreshFraction = DefaultRefreshFraction
	}
}

// Or sets *p to def when *p is zero: a Config field whose zero means its
// default.
func Or[T comparable](p *T, def T) {
	var zero T
	if *p == zero {
		*p = def
	}
}

// DefaultRate gives the rate limit and retry settings of a service's
// Config (the interval per request and the burst of its limiter, the
// attempts of a request) the service's own defaults where they are zero.
func DefaultRate(interval *time.Duration, defInterval time.Duration, burst *int, defBurst int, attempts *int, defAttempts int) {
	Or(interval, defInterval)
	Or(burst, defBurst)
	Or(attempts, defAttempts)
}
