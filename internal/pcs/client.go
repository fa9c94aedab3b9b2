package pcs

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"time"

	"github.com/trustgate/trustgate/internal/fetch"
	"github.com/trustgate/trustgate/internal/tiered"
)

// errNotFound is a 404: PCS has no such document (e.g. an FMSPC it does
// not know).
var errNotFound = errors.New("PCS has no such document (404)")

// client makes PCS requests: rate-limited, retried, never redirected.
type client struct {
	http           *http.Client
	lim            *tiered.Limiter
	now            func() time.Time
	sleep          func(context.Context, time.Duration) error
	log            *slog.Logger
	requestTimeout time.Duration
	attempts       int
	backoff        time.Duration
	backoffMax     time.Duration
	maxRetryAfter  time.Duration
	maxHoldBack    time.Duration
}

// response is a PCS answer: its body and the issuer chain of its header
// (URL-decoded PEM; nil when the header is absent).
type response struct {
	body, chain []byte
}

// get fetches u, what naming it in errors, with the issuer chain of the
// first of chainHeaders present. Retried: network errors, 5xx and 429;
// not retried: 404 and other 4xx, 3xx.
func (c *client) get(ctx context.Context, what, u string, chainHeaders ...string) (*response, error) {
	backoff := c.backoff
	var last error
	for attempt := 0; attempt < c.attempts; attempt++ {
		if attempt > 0 {
			d := backoff/2 + rand.N(backoff/2+1)
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < d {
				break
			}
			if err := c.sleep(ctx, d); err != nil {
				return nil, fmt.Errorf("PCS %s: %w (after %v)", what, err, last)
			}
			backoff = min(2*backoff, c.backoffMax)
		}
		if err := c.lim.Wait(ctx); err != nil {
			if last != nil {
				return nil, fmt.Errorf("PCS %s: %w (after %v)", what, err, last)
			}
			return nil, fmt.Errorf("PCS %s: %w", what, err)
		}
		resp, status, wait, err := c.once(ctx, u, chainHeaders)
		if err == nil {
			return resp, nil
		}
		last = fmt.Errorf("PCS %s: %w", what, err)
		switch {
		case status == http.StatusNotFound || (status >= 300 && status < 500 && status != http.StatusTooManyRequests):
			return nil, last
		case wait > 0:
			if wait > c.maxRetryAfter {
				return nil, fmt.Errorf("%w; Retry-After %s is longer than a fetch waits (%s)", last, wait, c.maxRetryAfter)
			}
			if dl, ok := ctx.Deadline(); ok && time.Until(dl) < wait {
				return nil, fmt.Errorf("%w; Retry-After %s ends after this fetch's deadline", last, wait)
			}
		}
		if ctx.Err() != nil {
			return nil, last
		}
	}
	return nil, last
}

// once makes one request; wait is a Retry-After of a 429 or 503 (which
// also holds every request back).
func (c *client) once(ctx context.Context, u string, chainHeaders []string) (*response, int, time.Duration, error) {
	rctx, cancel := context.WithTimeout(ctx, c.requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(rctx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, 0, err
	}
	resp, err := c.http.Do(req)
	if err != nil {
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // the URL is in what already
		}
		return nil, 0, 0, err
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusOK:
	case resp.StatusCode == http.StatusNotFound:
		return nil, resp.StatusCode, 0, errNotFound
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, resp.StatusCode, 0, fmt.Errorf("answered %s (redirects are not followed)", resp.Status)
	case resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable:
		wait, ok := fetch.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now())
		if ok {
			hold := wait
			if hold > c.maxHoldBack {
				c.log.Warn("PCS asked to hold back longer than the cap; capped", "retry_after", wait.String(), "cap", c.maxHoldBack.String())
				hold = c.maxHoldBack
			}
			c.lim.DeferUntil(c.now().Add(hold))
		}
		return nil, resp.StatusCode, wait, fmt.Errorf("answered %s", resp.Status)
	default:
		return nil, resp.StatusCode, 0, fmt.Errorf("answered %s", resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody+1))
	if err != nil {
		return nil, resp.StatusCode, 0, err
	}
	if len(body) > maxBody {
		return nil, resp.StatusCode, 0, fmt.Errorf("body larger than %d bytes", maxBody)
	}
	out := &response{body: body}
	for _, h := range chainHeaders {
		v := resp.Header.Get(h)
		if v == "" {
			continue
		}
		if len(v) > maxChain {
			return nil, resp.StatusCode, 0, fmt.Errorf("%s header larger than %d bytes", h, maxChain)
		}
		pem, err := url.PathUnescape(v)
		if err != nil {
			return nil, resp.StatusCode, 0, fmt.Errorf("%s header: %w", h, err)
		}
		out.chain = []byte(pem)
		break
	}
	return out, resp.StatusCode, 0, nil
}
