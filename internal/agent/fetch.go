package agent

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"syscall"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustgate/trustgate/client"
	"github.com/trustgate/trustgate/internal/atomicfile"
	"github.com/trustgate/trustgate/internal/resources"
)

// Options configures Fetch.
type Options struct {
	Client *client.Client
	Device Device
	// Resources names what to release; none means attest only.
	Resources []string
	// VerifierKeys are the verifier keys a release must be signed by
	// (SPEC "Agent trust in the verifier"), e.g. a JWKS pinned with
	// --verifier-jwks. Empty means none are pinned: FetchVerifierKeys
	// must then be set for a release.
	VerifierKeys jose.JSONWebKeySet
	// FetchVerifierKeys, when VerifierKeys is empty, takes the verifier's
	// keys from its /.well-known/jwks.json through Client. Only the caller
	// knows whether that answer can be trusted: set it only when the
	// connection is TLS that verified or stays on loopback.
	FetchVerifierKeys bool
	// Attempts is how many times the whole flow is tried when the verifier
	// answers 503 or cannot be reached; 0 means 5.
	Attempts int
	// Backoff is the first wait between attempts, doubled each time up to
	// 16 times its first value, each drawn from [d/2, d]; 0 means 500 ms.
	// A 503's Retry-After waits longer, up to MaxRetryAfter.
	Backoff time.Duration
	// MaxRetryAfter caps how long a verifier's Retry-After makes the agent
	// wait before the next attempt; 0 means 30 s.
	MaxRetryAfter time.Duration
	// Logf reports retries; nil means silence.
	Logf func(format string, args ...any)
}

// Fetched is what a successful Fetch returns.
type Fetched struct {
	Token     string
	Resources map[string][]byte // by name; nil when none were asked for
}

// Fetch attests and, when resources are named, releases them and opens
// the release with the ephemeral key bound at attestation, trusting it
// only if it is signed by a verifier key (client.OpenRelease). A 503 or a
// network error starts the whole flow again (a new challenge, a new key, a
// new report) after a backoff; any other failure ends it. The error of a
// refusal is the verifier's *client.APIError; that of a release that is
// not trusted wraps client.ErrUntrustedRelease.
func Fetch(ctx context.Context, o Options) (*Fetched, error) {
	if len(o.Resources) > 0 && len(o.VerifierKeys.Keys) == 0 && !o.FetchVerifierKeys {
		return nil, errors.New("no verifier key to check a release against: pin one (--verifier-jwks) or reach the verifier over TLS or loopback")
	}
	attempts, wait := o.Attempts, o.Backoff
	if attempts <= 0 {
		attempts = 5
	}
	if wait <= 0 {
		wait = 500 * time.Millisecond
	}
	maxWait := 16 * wait
	maxRetryAfter := o.MaxRetryAfter
	if maxRetryAfter <= 0 {
		maxRetryAfter = 30 * time.Second
	}
	for try := 1; ; try++ {
		f, err := fetchOnce(ctx, o)
		if err == nil || !Retryable(err) || try >= attempts || ctx.Err() != nil {
			return f, err
		}
		d := wait/2 + time.Duration(rand.Int64N(int64(wait/2)+1))
		// The verifier says when it can serve again (e.g. a certificate
		// fetch from AMD's KDS still running): no sooner, within reason.
		if api := (*client.APIError)(nil); errors.As(err, &api) && api.RetryAfter > d {
			d = min(api.RetryAfter, maxRetryAfter)
		}
		if o.Logf != nil {
			o.Logf("attempt %d of %d failed (%v); retrying in %s", try, attempts, err, d.Round(time.Millisecond))
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("%w (gave up: %w)", err, ctx.Err())
		case <-time.After(d):
		}
		wait = min(wait*2, maxWait)
	}
}

func fetchOnce(ctx context.Context, o Options) (*Fetched, error) {
	keys := o.VerifierKeys
	if len(o.Resources) > 0 && len(keys.Keys) == 0 {
		// Before attesting, so that a token is not spent on a release
		// that could not be checked.
		set, err := o.Client.JWKS(ctx)
		if err != nil {
			return nil, fmt.Errorf("the verifier's JWKS: %w", err)
		}
		if keys, err = client.ReleaseKeys(set); err != nil {
			return nil, fmt.Errorf("the verifier's JWKS: %w", err)
		}
	}
	res, err := Attest(ctx, o.Client, o.Device)
	if err != nil {
		return nil, err
	}
	f := &Fetched{Token: res.Token}
	if len(o.Resources) == 0 {
		return f, nil
	}
	jwe, err := o.Client.Release(ctx, res.Token, o.Resources)
	if err != nil {
		return nil, err
	}
	f.Resources, err = client.OpenRelease(jwe, client.ReleaseCheck{Key: res.Key, Token: res.Token, Resources: o.Resources, VerifierKeys: keys})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// Retryable reports whether err is worth a new attempt: the verifier (or
// a proxy before it) answered 502, 503 or 504, or could not be reached. A
// verifier whose TLS certificate does not verify, a refusal, a device
// failure or a release that does not decrypt are final.
func Retryable(err error) bool {
	var api *client.APIError
	if errors.As(err, &api) {
		return api.Status == http.StatusBadGateway || api.Status == http.StatusServiceUnavailable || api.Status == http.StatusGatewayTimeout
	}
	var tlsErr *tls.CertificateVerificationError
	if errors.As(err, &tlsErr) || errors.Is(err, context.Canceled) {
		return false
	}
	var urlErr *url.Error
	var netErr net.Error
	return errors.As(err, &urlErr) || errors.As(err, &netErr)
}

// DeviceError is a failure of the guest's attestation device: not worth
// retrying.
type DeviceError struct{ Err error }

func (e *DeviceError) Error() string { return "guest device: " + e.Err.Error() }
func (e *DeviceError) Unwrap() error { return e.Err }

// WriteResources writes each resource to dir/name, mode 0600, through a
// temporary file and a rename, creating dir with mode 0700. An existing
// dir must be a directory (not a symlink) owned by this user and
// accessible by its owner only: secrets are not put where someone else
// could swap them before the workload reads them.
func WriteResources(dir string, res map[string][]byte) error {
	if err := PrepareOut(dir); err != nil {
		return err
	}
	for name, b := range res {
		if err := resources.ValidName(name); err != nil {
			return err
		}
		if err := atomicfile.Write(filepath.Join(dir, name), b, 0o600); err != nil {
			return err
		}
	}
	return nil
}

// PrepareOut creates dir (mode 0700) if it does not exist and checks it as
// WriteResources does, so that the agent refuses a destination before it
// attests and consumes the release, not after.
func PrepareOut(dir string) error {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	st, err := os.Lstat(dir)
	if err != nil {
		return err
	}
	if !st.IsDir() {
		return fmt.Errorf("%s is not a directory (a symlink?): secrets are not written through it", dir)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("%s belongs to uid %d, not to this user (%d): secrets are not written into it", dir, sys.Uid, os.Geteuid())
	}
	if perm := st.Mode().Perm(); perm&0o077 != 0 {
		return fmt.Errorf("%s has mode %#o: secrets go only into a directory accessible by its owner only", dir, perm)
	}
	f, err := os.CreateTemp(dir, ".trustgate-agent-check-*")
	if err != nil {
		return fmt.Errorf("%s: cannot write into it: %w", dir, err)
	}
	f.Close()
	return os.Remove(f.Name())
}
