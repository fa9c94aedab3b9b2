// Package fetch holds what the vendor collateral clients share (AMD's KDS in
// internal/certs, Intel's PCS in internal/pcs): no redirects, one reading of
// Retry-After, a sleep that ends with its context, and an error that carries
// when to ask again. The services' own policy (rate limits, retries, tiers)
// stays in their packages.
package fetch

import (
	"context"
	"errors"
	"net"
	"net/http"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// MaxRetryAfter is the longest Retry-After ParseRetryAfter returns, whatever
// the form: a day.
const MaxRetryAfter = 24 * time.Hour

// NoRedirects returns a copy of c that follows no redirect: a 3xx comes back
// as the response, for the caller to turn into an error naming it. c is not
// changed.
func NoRedirects(c *http.Client) *http.Client {
	cc := *c
	cc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return &cc
}

// ParseRetryAfter reads a Retry-After header, delay-seconds or an HTTP date
// (relative to now), capped at MaxRetryAfter; ok is false when h is empty or
// neither form.
func ParseRetryAfter(h string, now time.Time) (d time.Duration, ok bool) {
	h = strings.TrimSpace(h)
	if h == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(h, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return time.Duration(min(n, int64(MaxRetryAfter/time.Second))) * time.Second, true
	}
	if t, err := http.ParseTime(h); err == nil {
		return min(max(t.Sub(now), 0), MaxRetryAfter), true
	}
	return 0, false
}

// Sleep waits d or until ctx ends (its error then).
func Sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// RetryLater is an error that says when asking again may succeed; the API
// turns it into the Retry-After of its 503 (attest.RetryAfter finds it).
type RetryLater struct {
	Err   error
	After time.Duration
}

func (e *RetryLater) Error() string             { return e.Err.Error() }
func (e *RetryLater) Unwrap() error             { return e.Err }
func (e *RetryLater) RetryAfter() time.Duration { return e.After }

// NoNetwork reports whether err says that this host cannot reach the
// service at all: its name does not resolve, or no route leads there.
// Retrying within a fetch does not cure that, so the clients give up at
// once (and the CLI says how to work offline).
func NoNetwork(err error) bool {
	var dns *net.DNSError
	if errors.As(err, &dns) && dns.IsNotFound {
		return true
	}
	return errors.Is(err, syscall.ENETUNREACH) || errors.Is(err, syscall.EHOSTUNREACH)
}
