package main

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	v1 "github.com/trustgate/trustgate/api/v1"
)

const forgedValue = "the man in the middle's password"

// forger is a man in the middle between agent and verifier: everything
// passes through, except that /v1/release is answered with a JWE of his
// own, encrypted to the guest's tee_pubkey read from the proxied attest
// request, and, if forgeJWKS, /.well-known/jwks.json with his own key.
type forger struct {
	URL       string
	signed    bool // sign the forged payload (nested JWT, bound like a genuine one) with his own key
	forgeJWKS bool
	key       *ecdsa.PrivateKey
	kid       string
	requests  atomic.Int32
	mu        sync.Mutex
	teeKey    *jose.JSONWebKey
}

func newForger(t *testing.T, verifier string, signed, forgeJWKS bool) *forger {
	t.Helper()
	f := &forger{signed: signed, forgeJWKS: forgeJWKS}
	f.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	tp, _ := (&jose.JSONWebKey{Key: f.key.Public()}).Thumbprint(crypto.SHA256)
	f.kid = base64.RawURLEncoding.EncodeToString(tp)
	u, _ := url.Parse(verifier)
	proxy := httputil.NewSingleHostReverseProxy(u)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		f.requests.Add(1)
		switch r.URL.Path {
		case v1.PathAttest:
			body, _ := io.ReadAll(r.Body)
			var req v1.AttestRequest
			json.Unmarshal(body, &req)
			var k jose.JSONWebKey
			if json.Unmarshal(req.TEEPubKey, &k) == nil {
				f.mu.Lock()
				f.teeKey = &k
				f.mu.Unlock()
			}
			r.Body = io.NopCloser(bytes.NewReader(body))
		case v1.PathRelease:
			f.release(t, w, r)
			return
		case v1.PathJWKS:
			if f.forgeJWKS {
				json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: f.key.Public(), KeyID: f.kid, Algorithm: "ES256", Use: "sig"}}})
				return
			}
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(srv.Close)
	f.URL = srv.URL
	return f
}

// release answers with the forged values for every resource asked for.
func (f *forger) release(t *testing.T, w http.ResponseWriter, r *http.Request) {
	var req v1.ReleaseRequest
	json.NewDecoder(r.Body).Decode(&req)
	plain := map[string][]byte{}
	for _, n := range req.Resources {
		plain[n] = []byte(forgedValue)
	}
	body, _ := json.Marshal(plain)
	f.mu.Lock()
	to := f.teeKey
	f.mu.Unlock()
	cty := "application/json"
	if f.signed {
		// Bound as the verifier binds: the token's jti, the key's thumbprint.
		tok, _ := jwt.ParseSigned(strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer "), []jose.SignatureAlgorithm{jose.ES256})
		var c jwt.Claims
		tok.UnsafeClaimsWithoutVerification(&c)
		tp, _ := to.Thumbprint(crypto.SHA256)
		so := (&jose.SignerOptions{}).WithType("JWT").
			WithHeader(v1.HeaderReleaseTokenID, c.ID).
			WithHeader(v1.HeaderReleaseKeyThumbprint, base64.RawURLEncoding.EncodeToString(tp))
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: f.key, KeyID: f.kid}}, so)
		if err != nil {
			t.Error(err)
			return
		}
		jws, _ := sig.Sign(body)
		s, _ := jws.CompactSerialize()
		body, cty = []byte(s), "JWT"
	}
	enc, err := jose.NewEncrypter(jose.A256GCM, jose.Recipient{Algorithm: jose.ECDH_ES, Key: to}, (&jose.EncrypterOptions{}).WithContentType(jose.ContentType(cty)))
	if err != nil {
		t.Error(err)
		return
	}
	obj, _ := enc.Encrypt(body)
	s, _ := obj.CompactSerialize()
	json.NewEncoder(w).Encode(v1.ReleaseResponse{JWE: s})
}

// saveJWKS saves the verifier's /.well-known/jwks.json to a file.
func saveJWKS(t *testing.T, verifier string) string {
	t.Helper()
	resp, err := http.Get(verifier + v1.PathJWKS)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	p := filepath.Join(t.TempDir(), "verifier-jwks.json")
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// unspecified is url (http://127.0.0.1:PORT) as http://0.0.0.0:PORT: the
// same listener on this machine (a connection to 0.0.0.0 reaches the local
// host), but not a loopback address by its URL, so that the rules for a
// verifier off loopback are tried without traffic leaving the machine.
func unspecified(u string) string { return strings.Replace(u, "127.0.0.1", "0.0.0.0", 1) }

// A man in the middle answering /v1/release with values of his choice,
// encrypted to the guest's key (which he saw in clear in the attest
// request), gets nothing written: the agent exits 1 and --out stays empty,
// whether his release is unsigned or signed with his own key, and whether
// or not he also serves his own JWKS, when the verifier's key is pinned
// or fetched where the agent trusts it. On loopback a fetched JWKS is
// trusted (the path never leaves the guest), so his JWKS is believed
// there, and only there.
func TestAgentRefusesForgedRelease(t *testing.T) {
	t.Parallel()
	verifier := startVerifier(t)
	pinned := saveJWKS(t, verifier)
	cases := []struct {
		name              string
		signed, forgeJWKS bool
		insecure, pin     bool // reach the forger at 0.0.0.0 with --insecure-http; pin with --verifier-jwks
		code              int
	}{
		{"unsigned release, pinned key", false, false, false, true, exitRejected},
		{"unsigned release, JWKS fetched on loopback", false, false, false, false, exitRejected},
		{"signed by his key, pinned key", true, false, false, true, exitRejected},
		{"signed by his key, JWKS fetched on loopback", true, false, false, false, exitRejected},
		{"his release and his JWKS, pinned key", true, true, false, true, exitRejected},
		{"his release and his JWKS, off loopback, pinned key", true, true, true, true, exitRejected},
		{"his release and his JWKS, off loopback, nothing pinned", true, true, true, false, exitUsage},
		{"his release and his JWKS, fetched on loopback (trusted there)", true, true, false, false, exitOK},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			f := newForger(t, verifier, c.signed, c.forgeJWKS)
			out := filepath.Join(t.TempDir(), "secrets")
			u := f.URL
			args := []string{"attest", "--simulate", "--attempts", "1", "--resource", "db-password", "--out", out}
			if c.insecure {
				u = unspecified(u)
				args = append(args, "--insecure-http")
			}
			if c.pin {
				args = append(args, "--verifier-jwks", pinned)
			}
			code, stdout, stderr := runAgent(append(args, "--verifier", u)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, c.code, stdout, stderr)
			}
			entries, _ := os.ReadDir(out)
			if c.code != exitOK {
				if len(entries) != 0 || strings.Contains(stdout, "AFFIRMING") {
					t.Errorf("written %d files, stdout %q", len(entries), stdout)
				}
				if c.code == exitUsage && f.requests.Load() != 0 {
					t.Errorf("a usage error after %d requests", f.requests.Load())
				}
				return
			}
			if b, _ := os.ReadFile(filepath.Join(out, "db-password")); string(b) != forgedValue {
				t.Errorf("loopback, fetched JWKS: wrote %q", b)
			}
		})
	}
	// Through a proxy that forges nothing, the pinned key opens the
	// verifier's release.
	vu, _ := url.Parse(verifier)
	honest := httptest.NewServer(httputil.NewSingleHostReverseProxy(vu))
	t.Cleanup(honest.Close)
	out := filepath.Join(t.TempDir(), "secrets")
	code, stdout, stderr := runAgent("attest", "--simulate", "--verifier", unspecified(honest.URL), "--insecure-http", "--verifier-jwks", pinned,
		"--resource", "db-password", "--out", out)
	if b, _ := os.ReadFile(filepath.Join(out, "db-password")); code != exitOK || string(b) != dbPassword || !strings.Contains(stderr, "warning: --insecure-http") {
		t.Errorf("honest path off loopback with the key pinned: exit %d, wrote %q\n%s%s", code, b, stdout, stderr)
	}
}

// A verifier URL that redirects is an error naming the status; the
// target is never asked, and nothing is retried.
func TestAgentFollowsNoRedirect(t *testing.T) {
	t.Parallel()
	verifier := startVerifier(t)
	var reached atomic.Int32
	target := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		reached.Add(1)
		u, _ := url.Parse(verifier)
		httputil.NewSingleHostReverseProxy(u).ServeHTTP(w, r)
	}))
	t.Cleanup(target.Close)
	redirector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	t.Cleanup(redirector.Close)
	code, stdout, stderr := runAgent("attest", "--simulate", "--verifier", redirector.URL, "--attempts", "3")
	if code == exitOK || !strings.Contains(stderr, "307") || strings.Contains(stderr, "retrying") || reached.Load() != 0 {
		t.Errorf("exit %d, target asked %d times\n%s%s", code, reached.Load(), stdout, stderr)
	}
}

// http:// to a verifier off loopback is a usage error before any
// connection, unless --insecure-http (which warns); --insecure-http
// cannot release without a pinned key. Bad URLs are usage errors too.
func TestAgentVerifierURLRules(t *testing.T) {
	t.Parallel()
	var accepted atomic.Int32
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			accepted.Add(1)
			c.Close()
		}
	}()
	off := fmt.Sprintf("http://0.0.0.0:%d", ln.Addr().(*net.TCPAddr).Port)
	out := t.TempDir()
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--verifier", off}, "--insecure-http"},
		{[]string{"--verifier", off, "--resource", "db-password", "--out", out}, "--insecure-http"},
		{[]string{"--verifier", off, "--insecure-http", "--resource", "db-password", "--out", out}, "--verifier-jwks"},
		{[]string{"--verifier", "ftp://127.0.0.1/"}, "scheme"},
		{[]string{"--verifier", "127.0.0.1:8080"}, "--verifier"},
		{[]string{"--verifier", "https://u:p@127.0.0.1/"}, "--verifier"},
		{[]string{"--verifier", "http://127.0.0.1:1", "--verifier-jwks", "/nonexistent.json"}, "--verifier-jwks"},
	}
	for _, c := range cases {
		code, _, stderr := runAgent(append([]string{"attest", "--simulate", "--attempts", "1"}, c.args...)...)
		if code != exitUsage || !strings.Contains(stderr, c.want) {
			t.Errorf("%q: exit %d, want %d and %q\n%s", c.args, code, exitUsage, c.want, stderr)
		}
	}
	if n := accepted.Load(); n != 0 {
		t.Errorf("%d connections before the usage errors", n)
	}
	// The same address with --insecure-http is dialled, with a warning.
	code, _, stderr := runAgent("attest", "--simulate", "--attempts", "1", "--verifier", off, "--insecure-http")
	if code != exitUnavailable || !strings.Contains(stderr, "warning: --insecure-http") || accepted.Load() == 0 {
		t.Errorf("--insecure-http: exit %d, %d connections\n%s", code, accepted.Load(), stderr)
	}
}

func TestVerifierPath(t *testing.T) {
	t.Parallel()
	for u, want := range map[string]int{
		"https://verifier.example:8443": pathTLS,
		"https://127.0.0.1":             pathTLS,
		"http://127.0.0.1:8080":         pathLoopback,
		"http://127.9.9.9":              pathLoopback,
		"http://[::1]:8080/":            pathLoopback,
		"http://LOCALHOST:8080":         pathLoopback,
		"http://verifier.example":       pathPlain,
		"http://10.0.0.1":               pathPlain,
		"http://0.0.0.0:8080":           pathPlain,
		"http://localhost.example":      pathPlain,
		"http://[::ffff:10.0.0.1]":      pathPlain,
	} {
		if got, err := verifierPath(u); err != nil || got != want {
			t.Errorf("%s: %d, %v; want %d", u, got, err, want)
		}
	}
	for addr, ok := range map[string]bool{"127.0.0.1:80": true, "[::1]:80": true, "10.0.0.1:80": false, "[2001:db8::1]:443": false, "0.0.0.0:80": false} {
		if err := loopbackOnly("tcp", addr, nil); (err == nil) != ok {
			t.Errorf("loopbackOnly %s: %v", addr, err)
		}
	}
}
