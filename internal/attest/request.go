package attest

import (
	"context"
	"errors"
	"strings"
	"sync"
	"time"
)

// Request-scoped values: who a request comes from and which nonce it
// presents. The HTTP API sets the client for /v1/attest and /verify, the
// verifier the nonce, and the certificate service reads both to bound the
// AMD KDS fetches one client and one nonce may cause. They are identities
// for bounding work, never for authorisation.
type (
	clientKey struct{}
	nonceKey  struct{}
)

// request is what WithClient puts into a context.
type request struct {
	client string
	once   sync.Once
	until  time.Time
}

// WithClient returns ctx carrying the identity of the client a request
// comes from (e.g. "ip:192.0.2.1" or "cert:<hash>"), and marks ctx as one
// request whose waits for slow dependencies share one deadline (see
// WaitUntil). An empty id leaves ctx as it is.
func WithClient(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	return context.WithValue(ctx, clientKey{}, &request{client: id})
}

// certClientPrefix begins the identity of a client known by a verified
// client certificate (CertClientID); others are addresses.
const certClientPrefix = "cert:"

// CertClientID is the client identity of a verified client certificate,
// given by its hex digest.
func CertClientID(digestHex string) string { return certClientPrefix + digestHex }

// CertClient reports whether the client identity id is a verified client
// certificate's (CertClientID), not an address.
func CertClient(id string) bool { return strings.HasPrefix(id, certClientPrefix) }

// ClientOf returns the client identity ctx carries, "" for none (an
// in-process caller: a warm-up, the CLI).
func ClientOf(ctx context.Context) string {
	if r, _ := ctx.Value(clientKey{}).(*request); r != nil {
		return r.client
	}
	return ""
}

// WaitUntil returns when waiting for a slow dependency on behalf of ctx
// must end: now+d for ctx without WithClient; with it, now+d at the
// request's first call and that same time at every later call, so that
// all the waits of one request together take at most d.
func WaitUntil(ctx context.Context, now time.Time, d time.Duration) time.Time {
	r, _ := ctx.Value(clientKey{}).(*request)
	if r == nil {
		return now.Add(d)
	}
	r.once.Do(func() { r.until = now.Add(d) })
	return r.until
}

// WithNonce returns ctx carrying the nonce the request presents (checked
// for its MAC and expiry, not yet consumed).
func WithNonce(ctx context.Context, n Nonce) context.Context {
	return context.WithValue(ctx, nonceKey{}, n)
}

// NonceOf returns the nonce ctx carries and whether it carries one.
func NonceOf(ctx context.Context) (Nonce, bool) {
	n, ok := ctx.Value(nonceKey{}).(Nonce)
	return n, ok
}

// RetryAfter returns the delay before a retry that the first error in
// err's chain with a RetryAfter() time.Duration method suggests (the
// Retry-After of an HTTP 503), and whether there is one.
func RetryAfter(err error) (time.Duration, bool) {
	var h interface{ RetryAfter() time.Duration }
	if errors.As(err, &h) {
		return h.RetryAfter(), true
	}
	return 0, false
}
