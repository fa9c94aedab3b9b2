package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"reflect"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/strictjson"
)

// DefaultRemoteTimeout is RemoteOptions.Timeout when it is 0.
const DefaultRemoteTimeout = 2 * time.Second

// maxRemoteAnswer bounds the body of an external engine's answer, in
// bytes; a decision is a few hundred.
const maxRemoteAnswer = 1 << 20

// RemoteOptions configure a Remote. URL is required.
type RemoteOptions struct {
	// URL is the decision's path on an OPA REST data API, such as
	// http://127.0.0.1:8181/v1/data/trustgate/decision.
	URL string
	// Timeout bounds one decision, connection included; 0 means
	// DefaultRemoteTimeout.
	Timeout time.Duration
	// Client sends the requests; nil means a client of its own that
	// follows no redirect and uses no proxy. A client given here is used
	// as is, except that redirects are never followed.
	Client *http.Client
	// RootCAs verify an https:// engine's certificate (policy_ca); nil
	// means the system roots. Not used with Client.
	RootCAs *x509.CertPool
	// ReasonCodes are the engine's own reason codes, declared by the
	// operator (policy_reason_codes; see ParseReasonCodes): a policy_*
	// reason of an answer that is not among them never leaves the
	// engine (policy_denied stands in), as for the embedded engine's
	// reason_codes. nil declares none.
	ReasonCodes []string
}

// Remote asks an external policy engine for each decision: the claims are
// POSTed as {"input": claims} and the answer's "result" is the decision
// document, checked as the embedded engine's is (see package doc).
//
// It fails closed, never allowing on trouble:
//   - no answer within Timeout, a connection that fails, a status other
//     than 2xx, or a body that is not OPA's JSON object: 503
//     policy_unavailable (the engine did not decide; the guest retries);
//   - an answer without "result" (the decision is undefined in that
//     engine) or with a result of the wrong shape: policy_denied, as the
//     embedded engine does.
type Remote struct {
	url     string
	timeout time.Duration
	client  *http.Client
	id      string
	reasons []string // declared own reason codes, sorted
}

// NewRemote returns a Remote for o.
func NewRemote(o RemoteOptions) (*Remote, error) {
	u, err := url.Parse(o.URL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return nil, errors.New("policy_url: want an http(s) URL with a host")
	}
	if o.Timeout <= 0 {
		o.Timeout = DefaultRemoteTimeout
	}
	reasons, err := ParseReasonCodes(o.ReasonCodes)
	if err != nil {
		return nil, fmt.Errorf("policy_reason_codes: %w", err)
	}
	c := o.Client
	if c == nil {
		t := http.DefaultTransport.(*http.Transport).Clone()
		t.Proxy = nil
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: o.RootCAs}
		c = &http.Client{Transport: t}
	}
	cc := *c
	cc.CheckRedirect = func(req *http.Request, via []*http.Request) error {
		return fmt.Errorf("policy engine answered with a redirect (%d); not followed", req.Response.StatusCode)
	}
	sum := sha256.Sum256([]byte("trustgate external policy\x00" + o.URL))
	return &Remote{url: o.URL, timeout: o.Timeout, client: &cc, id: "sha256:" + hex.EncodeToString(sum[:]), reasons: reasons}, nil
}

// ID is the appraisal-policy-id of an external policy: "sha256:" and the
// SHA-256 of its URL. It names the engine, not its content (which
// trustgate cannot see): a policy or data change inside the engine does
// not change it.
func (r *Remote) ID() string { return r.id }

// Evaluate asks the engine for the decision on c.
func (r *Remote) Evaluate(ctx context.Context, c attest.Verified) (attest.Decision, error) {
	if c == nil || reflect.ValueOf(c).IsNil() {
		return attest.Decision{}, attest.Errorf(attest.ReasonInternalError, "policy: no claims")
	}
	// The same document the embedded engine builds from the claims' JSON
	// tags.
	body, err := json.Marshal(struct {
		Input attest.Verified `json:"input"`
	}{c})
	if err != nil {
		return attest.Decision{}, attest.Errorf(attest.ReasonInternalError, "policy input: %w", err)
	}
	return r.evaluate(ctx, body)
}

// EvaluateJSON is Evaluate on claims given as a JSON object.
func (r *Remote) EvaluateJSON(ctx context.Context, claims []byte) (attest.Decision, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(claims, &probe); err != nil {
		return attest.Decision{}, attest.Errorf(attest.ReasonMalformedEvidence, "claims: not a JSON object")
	}
	body, err := json.Marshal(struct {
		Input json.RawMessage `json:"input"`
	}{claims})
	if err != nil {
		return attest.Decision{}, attest.Errorf(attest.ReasonMalformedEvidence, "claims: %w", err)
	}
	return r.evaluate(ctx, body)
}

func (r *Remote) evaluate(ctx context.Context, body []byte) (attest.Decision, error) {
	unavailable := func(format string, a ...any) (attest.Decision, error) {
		return attest.Decision{}, attest.Errorf(attest.ReasonPolicyUnavailable, "external policy: "+format, a...)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, r.url, bytes.NewReader(body))
	if err != nil {
		return unavailable("%w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Accept", "application/json")
	resp, err := r.client.Do(req)
	if err != nil {
		// Not err itself: it quotes the URL.
		if ctx.Err() != nil {
			return unavailable("no answer within %v", r.timeout)
		}
		return unavailable("request failed: %w", errors.Unwrap(err))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, maxRemoteAnswer+1))
	if err != nil {
		return unavailable("reading the answer: %w", err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return unavailable("status %d", resp.StatusCode)
	}
	if len(raw) > maxRemoteAnswer {
		return unavailable("answer larger than %d bytes", maxRemoteAnswer)
	}
	var ans map[string]json.RawMessage
	if err := json.Unmarshal(raw, &ans); err != nil {
		return unavailable("the answer is not a JSON object")
	}
	if err := strictjson.Keys(raw, nil); err != nil {
		// {"allow":false,"allow":true} must not read as its last key.
		return attest.Decision{}, attest.Errorf(attest.ReasonPolicyDenied, "external policy: ambiguous answer: %w", err)
	}
	res, ok := ans["result"]
	if !ok || string(bytes.TrimSpace(res)) == "null" {
		return attest.Decision{}, attest.Errorf(attest.ReasonPolicyDenied, "external policy: the decision is undefined")
	}
	var v any
	if err := json.Unmarshal(res, &v); err != nil {
		return attest.Decision{}, attest.Errorf(attest.ReasonPolicyDenied, "external policy: result: %w", err)
	}
	d, err := parseDecision(v)
	if err != nil {
		return d, err
	}
	return dropUndeclared(r.reasons, d), nil
}
