package pcs

import (
	"context"
	"errors"
	"fmt"
	"net/url"

	"github.com/trustgate/trustgate/internal/tiered"
)

// errNotFound is a 404: PCS has no such document (e.g. an FMSPC it does
// not know).
var errNotFound = errors.New("PCS has no such document (404)")

// client makes PCS requests through the origin's rate limit, retries and
// Retry-After handling (tiered.Origin).
type client struct {
	origin *tiered.Origin
	lim    *tiered.Limiter
}

// response is a PCS answer: its body and the issuer chain of its header
// (URL-decoded PEM; nil when the header is absent).
type response struct {
	body, chain []byte
}

// get fetches u, what naming it in errors, with the issuer chain of the
// first of chainHeaders present.
func (c *client) get(ctx context.Context, what, u string, chainHeaders ...string) (*response, error) {
	body, hdr, err := c.origin.Get(ctx, tiered.Request{What: what, URL: u, Limit: maxBody, Lim: c.lim})
	if err != nil {
		return nil, err
	}
	out := &response{body: body}
	for _, h := range chainHeaders {
		v := hdr.Get(h)
		if v == "" {
			continue
		}
		if len(v) > maxChain {
			return nil, fmt.Errorf("PCS %s: %s header larger than %d bytes", what, h, maxChain)
		}
		pem, err := url.PathUnescape(v)
		if err != nil {
			return nil, fmt.Errorf("PCS %s: %s header: %w", what, h, err)
		}
		out.chain = []byte(pem)
		break
	}
	return out, nil
}
