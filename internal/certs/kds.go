package certs

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/trustgate/trustgate/internal/fetch"
	"github.com/trustgate/trustgate/internal/tee/snp"
)

// DefaultKDSURL is the base URL of AMD's KDS.
const DefaultKDSURL = "https://kdsintf.amd.com"

// Response size limits: a VCEK is about 1.3 KiB, a cert_chain about
// 4.7 KiB; AMD's CRLs are small but a CRL grows with what it revokes.
const (
	maxCertSize = 64 << 10
	maxCRLSize  = 4 << 20
)

// Kind is what a KDS request asks for. Its values are the kind label of
// trustgate_kds_requests_total.
type Kind string

// The KDS request kinds (VCEK spec 57230 ch. 4).
const (
	KindVCEK      Kind = "vcek"       // /vcek/v1/{product}/{hwid}?...SPL
	KindCertChain Kind = "cert_chain" // /{vcek,vlek}/v1/{product}/cert_chain
	KindCRL       Kind = "crl"        // /{vcek,vlek}/v1/{product}/crl
)

// Kinds lists every Kind, for metrics to pre-initialise their labels.
func Kinds() []Kind { return []Kind{KindVCEK, KindCertChain, KindCRL} }

// VCEKURL returns the KDS URL of the VCEK for a chip and TCB: Milan and
// Genoa take the 64-byte CHIP_ID as 128 hex digits and blSPL, teeSPL,
// snpSPL, ucodeSPL; Turin takes CHIP_ID[0:8] as 16 hex digits and fmcSPL as
// well (VCEK spec 57230 ch. 4 and its Turin tables). The SPLs are those of
// REPORTED_TCB in the product's layout.
func VCEKURL(base string, req snp.KeyRequest) string {
	t := req.Product.DecodeTCB(req.TCB)
	q := fmt.Sprintf("blSPL=%d&teeSPL=%d&snpSPL=%d&ucodeSPL=%d", t.Bootloader, t.TEE, t.SNP, t.Microcode)
	if t.FMC != nil {
		q = fmt.Sprintf("fmcSPL=%d&", *t.FMC) + q
	}
	return fmt.Sprintf("%s/vcek/v1/%s/%s?%s", strings.TrimRight(base, "/"),
		url.PathEscape(string(req.Product)), hex.EncodeToString(req.HWID), q)
}

// CertChainURL returns the KDS URL of a product's certificate chain: the
// ASK then the ARK for VCEKs (/vcek/v1/{product}/cert_chain), the ASVK then
// the ARK for VLEKs (/vlek/v1/{product}/cert_chain), PEM.
func CertChainURL(base string, p snp.Product, s snp.Signer) string {
	return fmt.Sprintf("%s/%s/v1/%s/cert_chain", strings.TrimRight(base, "/"), signerPath(s), url.PathEscape(string(p)))
}

// CRLURL returns the KDS URL of a product's CRL, DER, signed by the ARK:
// /vcek/v1/{product}/crl covers the ASK, /vlek/v1/{product}/crl the ASVK.
func CRLURL(base string, p snp.Product, s snp.Signer) string {
	return fmt.Sprintf("%s/%s/v1/%s/crl", strings.TrimRight(base, "/"), signerPath(s), url.PathEscape(string(p)))
}

func signerPath(s snp.Signer) string {
	if s == snp.SignerVLEK {
		return "vlek"
	}
	return "vcek"
}

// checkRequest checks that req names a VCEK the KDS can serve.
func checkRequest(req snp.KeyRequest) error {
	if req.Signer != snp.SignerVCEK && req.Signer != "" {
		return fmt.Errorf("the KDS serves no %s certificates to verifiers", req.Signer)
	}
	if _, err := snp.ParseProduct(string(req.Product)); err != nil {
		return err
	}
	want := 64
	if req.Product == snp.Turin {
		want = 8
	}
	if len(req.HWID) != want {
		return fmt.Errorf("%s hwid must be %d bytes, got %d", req.Product, want, len(req.HWID))
	}
	return nil
}

// errNotFound is the KDS's 404: no such product, chip or TCB.
var errNotFound = errors.New("the KDS has no such certificate (HTTP 404)")

// kdsClient makes KDS requests with a client-side rate limit, per-attempt
// timeouts and bounded retries with jittered exponential backoff, honouring
// Retry-After on 429 and 503 (held to at most maxHoldBack). It follows no
// redirect. Its errors never carry the URL (it holds the chip id, which is
// not logged).
type kdsClient struct {
	base           string
	http           *http.Client
	obs            Observer
	log            *slog.Logger
	now            func() time.Time
	sleep          func(context.Context, time.Duration) error
	vcekLim        *limiter // VCEK requests
	otherLim       *limiter // cert_chain and CRL requests
	requestTimeout time.Duration
	attempts       int
	backoff        time.Duration
	backoffMax     time.Duration
	maxRetryAfter  time.Duration
	maxHoldBack    time.Duration
}

// holdBack holds every request of every kind back for d (the KDS throttles
// per client address).
func (c *kdsClient) holdBack(d time.Duration) {
	t := c.now().Add(d)
	c.vcekLim.deferUntil(t)
	c.otherLim.deferUntil(t)
}

// get fetches u and returns its body (at most limit bytes). what names
// the request in errors and logs, e.g. "Milan VCEK".
func (c *kdsClient) get(ctx context.Context, kind Kind, what, u string, limit int64) ([]byte, error) {
	lim := c.otherLim
	if kind == KindVCEK {
		lim = c.vcekLim
	}
	var last error
	for attempt := 1; ; attempt++ {
		if err := lim.wait(ctx); err != nil {
			return nil, fmt.Errorf("KDS %s: waiting for the rate limit: %w (last error: %v)", what, err, last)
		}
		body, status, wait, err := c.once(ctx, kind, what, u, limit)
		if err == nil {
			return body, nil
		}
		if status == http.StatusNotFound {
			return nil, err
		}
		last = err
		// A host that resolves no name or has no route does not get one
		// by waiting a few seconds: no retry (the CLI says how to work
		// offline).
		retryable := (status == 0 && !fetch.NoNetwork(err)) || status == http.StatusTooManyRequests || status >= 500
		d := c.backoff << (attempt - 1)
		if d > c.backoffMax || d <= 0 {
			d = c.backoffMax
		}
		d = d/2 + time.Duration(rand.Int64N(int64(d/2)+1)) // jitter in [d/2, d]
		if status == http.StatusTooManyRequests && wait <= 0 {
			wait = d // throttled without a Retry-After: hold back for the backoff
		}
		if wait > c.maxHoldBack {
			c.log.Warn("KDS asked to retry later than this verifier holds back; capped", "request", string(kind), "status", status,
				"retry_after", wait.String(), "held_back", c.maxHoldBack.String())
			wait = c.maxHoldBack
		}
		if wait > 0 {
			// The KDS throttles per client address: hold back every kind.
			c.log.Warn("KDS asked to retry later", "request", string(kind), "status", status, "retry_after", wait.String())
			c.holdBack(wait)
			if wait > c.maxRetryAfter {
				return nil, &fetch.RetryLater{Err: fmt.Errorf("%w; Retry-After %s exceeds the %s this client waits", last, wait, c.maxRetryAfter), After: wait}
			}
		}
		if !retryable || attempt >= c.attempts {
			// The fetch ends here: say why (a redirect, a status not
			// retried, or the last retry), without the URL.
			c.log.Warn("KDS request failed; giving up", "request", string(kind), "status", status, "attempt", attempt, "error", last.Error())
			if h := lim.heldBack(); h > 0 {
				return nil, &fetch.RetryLater{Err: last, After: h}
			}
			return nil, last
		}
		if wait > 0 {
			continue // the rate limit waits it out
		}
		// The next attempt waits for the backoff and for the rate limit:
		// log the longer, which is when it goes.
		c.log.Warn("KDS request failed; retrying", "request", string(kind), "status", status, "attempt", attempt,
			"next_attempt_in", max(d, lim.untilNext()).Round(time.Millisecond).String())
		if err := c.sleep(ctx, d); err != nil {
			return nil, fmt.Errorf("%w (gave up: %v)", last, err)
		}
	}
}

// once makes one request. status is 0 for a transport error; wait is the
// Retry-After of a 429 or 503.
func (c *kdsClient) once(ctx context.Context, kind Kind, what, u string, limit int64) (body []byte, status int, wait time.Duration, err error) {
	actx, cancel := context.WithTimeout(ctx, c.requestTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(actx, http.MethodGet, u, nil)
	if err != nil {
		return nil, 0, 0, fmt.Errorf("KDS %s: bad base URL", what)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		c.obs.KDSRequest(kind, "error")
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop the URL: it holds the chip id
		}
		if errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = fmt.Errorf("no answer within %s", c.requestTimeout)
		}
		return nil, 0, 0, fmt.Errorf("KDS %s: %w", what, err) // err holds no URL (above)
	}
	defer resp.Body.Close()
	c.obs.KDSRequest(kind, strconv.Itoa(resp.StatusCode))
	if resp.StatusCode != http.StatusOK {
		io.Copy(io.Discard, io.LimitReader(resp.Body, 4<<10))
		err := fmt.Errorf("KDS %s: HTTP %d", what, resp.StatusCode)
		if resp.StatusCode >= 300 && resp.StatusCode < 400 {
			err = fmt.Errorf("KDS %s: HTTP %d, a redirect (not followed)", what, resp.StatusCode)
		}
		if resp.StatusCode == http.StatusNotFound {
			err = fmt.Errorf("KDS %s: %w", what, errNotFound)
		}
		if resp.StatusCode == http.StatusTooManyRequests || resp.StatusCode == http.StatusServiceUnavailable {
			wait, _ = fetch.ParseRetryAfter(resp.Header.Get("Retry-After"), c.now())
		}
		return nil, resp.StatusCode, wait, err
	}
	body, err = io.ReadAll(io.LimitReader(resp.Body, limit+1))
	if err != nil {
		return nil, 0, 0, fmt.Errorf("KDS %s: reading the response: %v", what, err)
	}
	if int64(len(body)) > limit {
		return nil, resp.StatusCode, 0, fmt.Errorf("KDS %s: response exceeds %d bytes", what, limit)
	}
	return body, resp.StatusCode, 0, nil
}
