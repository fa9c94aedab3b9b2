package httpapi

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/base64"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/verifier"
)

type hint time.Duration

func (h hint) Error() string             { return "later" }
func (h hint) RetryAfter() time.Duration { return time.Duration(h) }

// Every 503 carries Retry-After: the error's hint in whole seconds
// (rounded up, at most an hour), else 5; other statuses carry none.
func TestEvery503HasRetryAfter(t *testing.T) {
	t.Parallel()
	cases := []struct {
		err  error
		want string
	}{
		{attest.Errorf(attest.ReasonVCEKUnavailable, "KDS: %w", hint(1500*time.Millisecond)), "2"},
		{attest.Errorf(attest.ReasonVCEKUnavailable, "KDS: %w", hint(24*time.Hour)), "3600"},
		{attest.Errorf(attest.ReasonVCEKUnavailable, "KDS down"), "5"},
		{attest.Errorf(attest.ReasonStoreUnavailable, "redis down"), "5"},
		{attest.Errorf(attest.ReasonVCEKUnavailable, "KDS: %w", hint(0)), "5"},
		{attest.Errorf(attest.ReasonMeasurementMismatch, "no: %w", hint(time.Second)), ""},
	}
	for _, tc := range cases {
		w := httptest.NewRecorder()
		writeError(w, tc.err)
		if got := w.Header().Get("Retry-After"); got != tc.want {
			t.Errorf("%v: Retry-After %q, want %q", tc.err, got, tc.want)
		}
	}
	// /readyz's 503 too.
	h := New(Options{Attester: &clientRecorder{}, JWKS: func() jose.JSONWebKeySet { return jose.JSONWebKeySet{} }, Health: notReady{}})
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, v1.PathReadyz, nil))
	if w.Code != http.StatusServiceUnavailable || w.Header().Get("Retry-After") != "5" {
		t.Errorf("/readyz: %d, Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
}

type notReady struct{}

func (notReady) PolicyID() string { return "p" }
func (notReady) Ready() error     { return fmt.Errorf("policy reload failed") }

// clientRecorder answers every attestation with vcek_unavailable and
// remembers the client its context carried.
type clientRecorder struct {
	mu     sync.Mutex
	client string
}

func (c *clientRecorder) Attest(ctx context.Context, _ verifier.AttestInput) (string, error) {
	return "", c.record(ctx)
}

func (c *clientRecorder) VerifyPlain(ctx context.Context, _ []byte) error { return c.record(ctx) }

func (c *clientRecorder) record(ctx context.Context) error {
	c.mu.Lock()
	c.client = attest.ClientOf(ctx)
	c.mu.Unlock()
	return attest.Errorf(attest.ReasonVCEKUnavailable, "KDS down")
}

func (c *clientRecorder) last() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.client
}

// /v1/attest and /verify tell the services below who the client is: its
// verified certificate, else its address (IPv6 by /64).
func TestClientIdentity(t *testing.T) {
	t.Parallel()
	leaf := &x509.Certificate{Raw: []byte("a client certificate")}
	cases := []struct {
		remote string
		tls    *tls.ConnectionState
		want   string
	}{
		{"192.0.2.7:4711", nil, "ip:192.0.2.7"},
		{"[::ffff:192.0.2.7]:4711", nil, "ip:192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:4711", nil, "net:2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ff::1]:80", nil, "net:2001:db8:1:2::/64"},
		{"192.0.2.7:4711", &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{leaf}}}, "cert:"},
	}
	for _, tc := range cases {
		r := httptest.NewRequest(http.MethodPost, v1.PathAttest, nil)
		r.RemoteAddr, r.TLS = tc.remote, tc.tls
		if got := clientID(r); !strings.HasPrefix(got, tc.want) || (tc.tls != nil && len(got) != len("cert:")+32) {
			t.Errorf("%s: client %q, want %q", tc.remote, got, tc.want)
		}
	}

	rec := &clientRecorder{}
	h := New(Options{Attester: rec, JWKS: func() jose.JSONWebKeySet { return jose.JSONWebKeySet{} }, Health: notReady{}})
	bodies := map[string]string{
		v1.PathAttest: `{"nonce":"` + base64.StdEncoding.EncodeToString(make([]byte, 64)) + `","tee":"sev-snp","evidence":{"report":""}}`,
		v1.PathVerify: strings.Repeat("x", 10),
	}
	for path, body := range bodies {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader(body))
		r.RemoteAddr = "192.0.2.9:1"
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != http.StatusServiceUnavailable || rec.last() != "ip:192.0.2.9" {
			t.Errorf("%s: %d, the verifier saw client %q", path, w.Code, rec.last())
		}
	}
}
