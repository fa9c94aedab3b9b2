package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	v1 "github.com/trustgate/trustgate/api/v1"
)

// maxResponse bounds an answer: a release of the most resources the
// verifier sends (64 of 32 KiB, base64 in a signed JWS, base64url again in
// a JWE: about 5 MiB) fits with room to spare.
const maxResponse = 8 << 20

// Client calls one verifier. The zero HTTP client means one with a 30 s
// timeout. Redirects are never followed, whatever HTTP's CheckRedirect
// says: a 3xx answer is a *RedirectError.
type Client struct {
	BaseURL string
	HTTP    *http.Client
}

// RedirectError is a 3xx answer: no client of trustgate follows redirects
// (SPEC "Agent trust in the verifier"), so a verifier URL that redirects
// is a misconfiguration or someone on the path.
type RedirectError struct {
	Status   int
	Location string // the Location header, "" if none
}

func (e *RedirectError) Error() string {
	return fmt.Sprintf("HTTP %d %s (to %q): redirects are not followed; give the verifier's final URL", e.Status, http.StatusText(e.Status), e.Location)
}

// noRedirect makes an http.Client hand back a 3xx answer instead of
// following it.
func noRedirect(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }

// APIError is a non-2xx answer: its status and the body's reason code.
type APIError struct {
	Status  int
	Reason  string
	Message string
	// RetryAfter is the answer's Retry-After in seconds (a 503's hint of
	// when to try again); 0 when it has none or it is not a number of
	// seconds.
	RetryAfter time.Duration
}

// retryAfter reads a Retry-After header given as delay-seconds, as the
// verifier sends it; an HTTP date or anything else is ignored.
func retryAfter(h string) time.Duration {
	n, err := strconv.ParseUint(strings.TrimSpace(h), 10, 32)
	if err != nil {
		return 0
	}
	return time.Duration(n) * time.Second
}

func (e *APIError) Error() string {
	return fmt.Sprintf("HTTP %d %s: %s", e.Status, e.Reason, e.Message)
}

// Challenge asks for a nonce.
func (c *Client) Challenge(ctx context.Context) (v1.ChallengeResponse, error) {
	var out v1.ChallengeResponse
	err := c.do(ctx, v1.PathChallenge, "", []byte("{}"), &out)
	if err == nil && len(out.Nonce) != 64 {
		err = fmt.Errorf("verifier sent a %d-byte nonce", len(out.Nonce))
	}
	return out, err
}

// Attest sends evidence and returns the token.
func (c *Client) Attest(ctx context.Context, req v1.AttestRequest) (v1.AttestResponse, error) {
	body, err := json.Marshal(req)
	if err != nil {
		return v1.AttestResponse{}, err
	}
	var out v1.AttestResponse
	return out, c.do(ctx, v1.PathAttest, "", body, &out)
}

// Release asks for resources with an attestation token and returns the
// JWE they come in; open it with OpenRelease.
func (c *Client) Release(ctx context.Context, token string, names []string) (string, error) {
	body, err := json.Marshal(v1.ReleaseRequest{Resources: names})
	if err != nil {
		return "", err
	}
	var out v1.ReleaseResponse
	if err := c.do(ctx, v1.PathRelease, token, body, &out); err != nil {
		return "", err
	}
	return out.JWE, nil
}

// JWKS fetches the verifier's token keys.
func (c *Client) JWKS(ctx context.Context) (jose.JSONWebKeySet, error) {
	var out jose.JSONWebKeySet
	return out, c.do(ctx, v1.PathJWKS, "", nil, &out)
}

// do sends body as JSON (POST) or nothing (GET), with token as a bearer
// token unless "", and decodes a 2xx answer into out.
func (c *Client) do(ctx context.Context, path, token string, body []byte, out any) error {
	method := http.MethodGet
	if body != nil {
		method = http.MethodPost
	}
	req, err := http.NewRequestWithContext(ctx, method, strings.TrimRight(c.BaseURL, "/")+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	hc := http.Client{Timeout: 30 * time.Second}
	if c.HTTP != nil {
		hc = *c.HTTP
	}
	hc.CheckRedirect = noRedirect
	resp, err := hc.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode/100 == 3 {
		return fmt.Errorf("%s: %w", path, &RedirectError{Status: resp.StatusCode, Location: resp.Header.Get("Location")})
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxResponse+1))
	if err != nil {
		return err
	}
	if len(b) > maxResponse {
		return fmt.Errorf("%s: the verifier's answer exceeds %d bytes", path, maxResponse)
	}
	if resp.StatusCode/100 != 2 {
		var e v1.Error
		json.Unmarshal(b, &e)
		return &APIError{Status: resp.StatusCode, Reason: e.Reason, Message: e.Error, RetryAfter: retryAfter(resp.Header.Get("Retry-After"))}
	}
	return json.Unmarshal(b, out)
}
