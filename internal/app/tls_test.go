package app

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/client"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/testkit"
)

// With tls_cert/tls_key and client_ca, serve speaks TLS and admits to the
// API only agents with a certificate under the client CA: others get 401
// unauthorized_client, while health and JWKS stay open.
func TestServeTLSKnownAgentsOnly(t *testing.T) {
	t.Parallel()
	p := testkit.NewPKI(t)
	s := startServer(t, refYAML(""), func(c *config.Config) {
		c.TLSCert, c.TLSKey, c.ClientCA = p.ServerCert, p.ServerKey, p.CAFile
	})
	httpsURL := strings.Replace(s.url, "http://", "https://", 1)
	clientCert, err := tls.LoadX509KeyPair(p.ClientCert, p.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	agent := &client.Client{BaseURL: httpsURL, HTTP: &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.Pool, Certificates: []tls.Certificate{clientCert}}}}}
	anonymous := &client.Client{BaseURL: httpsURL, HTTP: &http.Client{Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.Pool}}}}
	ctx := context.Background()

	g := newGuest(t, sim.Options{})
	ch, err := agent.Challenge(ctx)
	if err != nil {
		t.Fatalf("known agent: %v", err)
	}
	if _, err := agent.Attest(ctx, g.request(ch.Nonce, false)); err != nil {
		t.Fatalf("known agent: %v", err)
	}
	// Every gated path refuses a client without a certificate.
	for _, path := range []string{v1.PathChallenge, v1.PathAttest, v1.PathRelease, v1.PathVerify} {
		resp, err := anonymous.HTTP.Post(httpsURL+path, "application/json", strings.NewReader("{}"))
		if err != nil {
			t.Fatal(err)
		}
		var e v1.Error
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != http.StatusUnauthorized || e.Reason != "unauthorized_client" {
			t.Errorf("%s without a certificate: %d %+v", path, resp.StatusCode, e)
		}
	}
	if _, err := anonymous.JWKS(ctx); err != nil {
		t.Fatalf("JWKS must stay open: %v", err)
	}
	resp, err := anonymous.HTTP.Get(httpsURL + v1.PathHealthz)
	if err != nil || resp.StatusCode != http.StatusOK {
		t.Fatalf("healthz: %v %v", resp, err)
	}
	resp.Body.Close()
	// Plain HTTP to the TLS port gets no API.
	if _, err := s.c.Challenge(ctx); err == nil {
		t.Fatal("plain HTTP was answered")
	}
}

// Incomplete or unreadable TLS settings stop serve before it starts.
func TestServeTLSConfigRefused(t *testing.T) {
	t.Parallel()
	p := testkit.NewPKI(t)
	for name, c := range map[string]func(*config.Config){
		"cert without key":   func(c *config.Config) { c.TLSCert = p.ServerCert },
		"client CA, no TLS":  func(c *config.Config) { c.ClientCA = p.CAFile },
		"key is not the key": func(c *config.Config) { c.TLSCert, c.TLSKey = p.ServerCert, p.ClientKey },
		"CA not PEM":         func(c *config.Config) { c.TLSCert, c.TLSKey, c.ClientCA = p.ServerCert, p.ServerKey, p.ServerKey },
	} {
		cfg := config.Default()
		cfg.Listen, cfg.Offline, cfg.CertCacheDir = "127.0.0.1:0", true, t.TempDir()
		c(&cfg)
		if a, err := New(context.Background(), cfg, Deps{}); err == nil {
			a.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}
