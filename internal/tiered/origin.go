package tiered

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"time"

	"github.com/trustgate/trustgate/internal/fetch"
)

// Origin is the HTTP client of a service's origin (AMD's KDS, Intel's
// PCS): a rate limit per request, per-attempt timeouts and bounded retries
// with jittered exponential backoff, honouring Retry-After on 429 and 503
// (held to at most MaxHoldBack, which is logged). It follows no redirect
// (HTTP should be fetch.NoRedirects'). Its errors and logs never carry the
// URL (it may hold a chip id).
type Origin struct {
	Name     string // "KDS", "PCS": in errors and logs
	HTTP     *http.Client
	Log      *slog.Logger
	Now      func() time.Time
	Sleep    func(context.Context, time.Duration) error
	NotFound error // what a 404 wraps, for errors.Is
	// HoldBack holds requests back until t after a Retry-After: every
	// limiter of the origin, which throttles per client address.
	HoldBack func(t time.Time)

	RequestTimeout time.Duration
	Attempts       int // in all, at least 1
	Backoff        time.Duration
	MaxBackoff     time.Duration
	MaxRetryAfter  time.Duration // the longest Retry-After a fetch waits for
	MaxHoldBack    time.Duration
}

// Request is one document to get from the origin.
type Request struct {
	What  string // names it in errors and logs, e.g. "Milan VCEK"; no chip id
	URL   string
	Limit int64 // the largest body taken
	Lim   *Limiter
	// Observe, if not nil, counts each response by its status code, or
	// "error" when there was none.
	Observe func(status string)
}

// Get fetches r and returns its body and headers. Retried: transport
// errors, 429 and 5xx; not retried: 404 (wrapping NotFound) and the other
// 3xx and 4xx. A Retry-After longer than MaxRetryAfter fails the fetch at
// once with a *fetch.RetryLater, and still holds every request back.
func (o *Origin) Get(ctx context.Context, r Request) ([]byte, http.Header, error) {
	var last error
	for attempt := 1; ; attempt++ {
		if err := r.Lim.Wait(ctx); err != nil {
			return nil, nil, fmt.Errorf("%s %s: waiting for the rate limit: %w (last error: %v)", o.Name, r.What, err, last)
		}
		body, hdr, status, wait, err := o.once(ctx, r)
		if err == nil {
			return body, hdr, nil
		}
		if status == http.StatusNotFound {
			return nil, nil, err
		}
		last = err
		// A host that resolves no name or has no route does not get one
		// by waiting a few seconds: no retry (the CLI says how to work
		// offline).
		retryable := (status == 0 && !fetch.NoNetwork(err)) || status == http.StatusTooManyRequests || status >= 500
		d := o.Backoff << (attempt - 1)
		if d > o.MaxBackoff || d <= 0 {
			d = o.MaxBackoff
		}
		d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1)) // jitter in [d/2, d]
		if status == http.StatusTooManyRequests && wait <= 0 {
			wait = d // throttled without a Retry-After: hold back for the backoff
		}
		if wait > o.MaxHoldBack {
			o.Log.Warn(o.Name+" asked to retry later than this verifier holds back; capped", "request", r.What, "status", status,
				"retry_after", wait.String(), "held_back", o.MaxHoldBack.String())
			wait = o.MaxHoldBack
		}
		if wait > 0 {
			o.Log.Warn(o.Name+" asked to retry later", "request", r.What, "status", status, "retry_after", wait.String())
			o.HoldBack(o.Now().Add(wait))
			if wait > o.MaxRetryAfter {
				return nil, nil, &fetch.RetryLater{Err: fmt.Errorf("%w; Retry-After %s exceeds the %s this client waits", last, wait, o.MaxRetryAfter), After: wait}
			}
		}
		if !retryable || attempt >= o.Attempts {
			// The fetch ends here: say why (a redirect, a status not
			// retried, or the last retry), without the URL.
			o.Log.Warn(o.Name+" request failed; giving up", "request", r.What, "status", status, "attempt", attempt, "error", last.Error())
			if h := r.Lim.HeldBack(); h > 0 {
				return nil, nil, &fetch.RetryLater{Err: last, After: h}
			}
			return nil, nil, last
		}
		if wait > 0 {
			continue // the rate limit waits it out
		}
		// The next attempt waits for the backoff and for the rate limit:
		// log the longer, which is when it goes.
		o.Log.Warn(o.Name+" request failed; retrying", "request", r.What, "status", status, "attempt", attempt,
			"next_attempt_in", max(d, r.Lim.untilNext()).Round(time.Millisecond).String())
		if err := o.Sleep(ctx, d); err != nil {
			return nil, nil, fmt.Errorf("%w (gave up: %v)", last, err)
		}
	}
}

// once makes one request. status is 0 for a transport error; wait is the
// Retry-After of a 429 or 503.
func (o *Origin) once(ctx context.Context, r Request) (body []byte, hdr http.Header, status int, wait time.Duration, err error) {
	observe := r.Observe
	if observe == nil {
		observe = func(string) {}
	}
	actx, cancel := context.WithTimeout(ctx, o.RequestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, r.URL, nil)
	if err != nil {
		return nil, nil, 0, 0, fmt.Errorf("%s %s: bad base URL", o.Name, r.What)
	}
	resp, err := o.HTTP.Do(req)
	if err != nil {
		observe("error")
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop the URL: it may hold a chip id
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %s", o.RequestTimeout)
		}
		return nil, nil, 0, 0, fmt.Errorf("%s %s: %w", o.Name, r.What, err) // err holds no URL (above)
	}
	defer resp.Body.Close()
	observe(strconv.Itoa(resp.StatusCode))
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		err := fmt.Errorf("%s %s: HTTP %d", o.Name, r.What, resp.StatusCode)
		switch {
		case resp.StatusCode >= 300 && resp.StatusCode < 400:
			err = fmt.Errorf("%s %s: HTTP %d, a redirect (not followed)", o.Name, r.What, resp.StatusCode)
		case resp.StatusCode == http.StatusNotFound:
			err = fmt.Errorf("%s %s: %w", o.Name, r.What, o.NotFound)
		case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
			wait, _ = fetch.ParseRetryAfter(resp.Header.Get("Retry-After"), o.Now())
		}
		return nil, nil, resp.StatusCode, wait, err
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, r.Limit+1))
	if err != nil {
		return nil, nil, 0, 0, fmt.Errorf("%s %s: reading the response: %v", o.Name, r.What, err)
	}
	if int64(len(body)) > r.Limit {
		return nil, nil, resp.StatusCode, 0, fmt.Errorf("%s %s: response exceeds %d bytes", o.Name, r.What, r.Limit)
	}
	return body, resp.Header, resp.StatusCode, 0, nil
}

// CheckSettings checks what every service over this cache is configured
// with, its defaults applied: the origin's URLs are http(s) with a host,
// the refresh fraction is in (0, 1], and no count or duration is
// negative. It reports every violation, joined.
func CheckSettings(origin string, urls []string, refreshFraction float64, counts []int, durations []time.Duration) error {
	var errs []error
	for _, raw := range urls {
		if u, err := url.Parse(raw); err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
			errs = append(errs, fmt.Errorf("%s URL %q is not an http(s) URL", origin, raw))
		}
	}
	if refreshFraction <= 0 || refreshFraction > 1 {
		errs = append(errs, fmt.Errorf("refresh fraction %v is not in (0, 1]", refreshFraction))
	}
	if slices.ContainsFunc(counts, func(n int) bool { return n < 0 }) {
		errs = append(errs, errors.New("rate burst, attempts and other counts must not be negative"))
	}
	if slices.ContainsFunc(durations, func(d time.Duration) bool { return d < 0 }) {
		errs = append(errs, errors.New("timeouts and backoffs must not be negative"))
	}
	return errors.Join(errs...)
}

// NewOrigin returns o with what both services' Configs leave open
// resolved: no Log is a discarding one; no Sleep is a real timer, and the
// rate limit and retries then measure time with time.Now whatever Now says
// (tests set both); no HTTP is a plain http.Client; redirects are never
// followed.
func NewOrigin(o Origin) *Origin {
	if o.Log == nil {
		o.Log = slog.New(slog.DiscardHandler)
	}
	if o.Sleep == nil || o.Now == nil {
		o.Now, o.Sleep = time.Now, fetch.Sleep
	}
	if o.HTTP == nil {
		o.HTTP = &http.Client{}
	}
	o.HTTP = fetch.NoRedirects(o.HTTP)
	o.Attempts = max(o.Attempts, 1)
	return &o
}
