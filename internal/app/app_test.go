package app

import (
	"bytes"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/client"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/policy"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/testkit"
	"github.com/trustgate/trustgate/internal/token"
)

// server is a running verifier on loopback.
type server struct {
	url   string
	c     *client.Client
	clock *testkit.Clock
	dir   string
	logs  *bytes.Buffer
	logMu sync.Mutex
	app   *App
}

var approved = sim.DefaultMeasurement

func refYAML(extra string) string {
	return fmt.Sprintf("measurements:\n  - value: %q\n    label: build-1\n    resources: [db-password]\n%s", hex.EncodeToString(approved[:]), extra)
}

func startServer(t testing.TB, ref string, mutate func(*config.Config)) *server {
	t.Helper()
	dir := t.TempDir()
	s := &server{clock: testkit.NewClock(time.Now()), dir: dir, logs: &bytes.Buffer{}}
	cfg := config.Default()
	cfg.Listen, cfg.DevSimulator, cfg.Offline = "127.0.0.1:0", true, true
	cfg.CertCacheDir = filepath.Join(dir, "certs")
	cfg.ReloadInterval = 100 * time.Millisecond
	cfg.ShutdownDelay = 0
	cfg.ReferenceValues = filepath.Join(dir, "ref.yaml")
	if err := os.WriteFile(cfg.ReferenceValues, []byte(ref), 0o600); err != nil {
		t.Fatal(err)
	}
	if mutate != nil {
		mutate(&cfg)
	}
	log := slog.New(slog.NewJSONHandler(lockedWriter{&s.logMu, s.logs}, nil))
	s.app, s.url = serveTest(t, cfg, Deps{Logger: log, Now: s.clock.Now})
	s.c = &client.Client{BaseURL: s.url}
	return s
}

// serveTest builds an App from cfg and serves it on a loopback port until
// the test ends (then it must stop cleanly), returning it and its URL.
func serveTest(t testing.TB, cfg config.Config, d Deps) (*App, string) {
	t.Helper()
	a, url, _ := serveStoppable(t, cfg, d)
	return a, url
}

// serveStoppable is serveTest with a function that stops the server and
// closes the App before the test ends (once; cleanup calls it too).
func serveStoppable(t testing.TB, cfg config.Config, d Deps) (*App, string, func()) {
	t.Helper()
	if cfg.StateDir == "" {
		cfg.StateDir = filepath.Join(t.TempDir(), "state") // never the user's
	}
	a, err := New(context.Background(), cfg, d)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- a.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Errorf("Serve: %v", err)
			}
			a.Close()
		})
	}
	t.Cleanup(stop)
	return a, "http://" + ln.Addr().String(), stop
}

// logText is what the server has logged so far.
func (s *server) logText() string {
	s.logMu.Lock()
	defer s.logMu.Unlock()
	return s.logs.String()
}

type lockedWriter struct {
	mu *sync.Mutex
	w  io.Writer
}

func (l lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

// guest is one simulated guest with an ephemeral key.
type guest struct {
	dev *sim.Device
	key *ecdsa.PrivateKey
	jwk []byte
	tp  []byte
}

func newGuest(t testing.TB, o sim.Options) *guest {
	t.Helper()
	dev, err := sim.New(o)
	if err != nil {
		t.Fatal(err)
	}
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	j := jose.JSONWebKey{Key: key.Public()}
	raw, _ := json.Marshal(j)
	tp, _ := j.Thumbprint(crypto.SHA256)
	return &guest{dev: dev, key: key, jwk: raw, tp: tp}
}

// request builds an attest request for nonce n, REPORT_DATA bound per
// SPEC rule 2 (with the guest's key unless noKey).
func (g *guest) request(n []byte, noKey bool) v1.AttestRequest {
	rd := attest.BindReportData(attest.Nonce(n), g.tp)
	req := v1.AttestRequest{Nonce: n, TEE: v1.TEESEVSNP, TEEPubKey: g.jwk}
	if noKey {
		rd, req.TEEPubKey = [64]byte(n), nil
	}
	req.Evidence.Report, req.Evidence.CertTable = g.dev.Report(rd)
	return req
}

func (s *server) challenge(t testing.TB) []byte {
	t.Helper()
	ch, err := s.c.Challenge(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return ch.Nonce
}

func reasonOf(err error) string {
	var e *client.APIError
	if errors.As(err, &e) {
		return e.Reason
	}
	if err == nil {
		return ""
	}
	return "transport: " + err.Error()
}

// statusOf is the HTTP status of a refusal, 0 for anything else.
func statusOf(err error) int {
	var e *client.APIError
	if errors.As(err, &e) {
		return e.Status
	}
	return 0
}

func TestHappyPathTokenVerifiesAgainstJWKS(t *testing.T) {
	t.Parallel()
	s := startServer(t, refYAML(""), nil)
	g := newGuest(t, sim.Options{})
	ctx := context.Background()
	secrets := []string{hex.EncodeToString(approved[:])}
	for _, noKey := range []bool{false, true} {
		n := s.challenge(t)
		resp, err := s.c.Attest(ctx, g.request(n, noKey))
		secrets = append(secrets, resp.Token, base64.StdEncoding.EncodeToString(n), hex.EncodeToString(n))
		if err != nil {
			t.Fatalf("noKey=%v: %v", noKey, err)
		}
		jwks, err := s.c.JWKS(ctx)
		if err != nil {
			t.Fatal(err)
		}
		ear, err := token.Verify(resp.Token, jwks, "trustgate", s.clock.Now())
		if err != nil {
			t.Fatalf("token: %v", err)
		}
		sm := ear.Submods[v1.TEESEVSNP]
		if resp.Status != "affirming" || sm.Status != "affirming" || sm.Label != "build-1" || !strings.HasPrefix(sm.PolicyID, "sha256:") || !ear.DevSimulator {
			t.Fatalf("noKey=%v: %+v %+v", noKey, resp, ear)
		}
		if noKey != (sm.TEEPubKey == nil) {
			t.Fatalf("noKey=%v but tee_pubkey %v", noKey, sm.TEEPubKey)
		}
		if !noKey && !sm.TEEPubKey.Key.(*ecdsa.PublicKey).Equal(g.key.Public()) {
			t.Fatal("token carries another key")
		}
	}
	// Logs hold the result and reason only: no token, nonce or claim.
	for _, secret := range secrets {
		if secret != "" && strings.Contains(s.logText(), secret) {
			t.Errorf("log mentions %q:\n%s", secret, s.logText())
		}
	}
	var h v1.Health
	getJSON(t, s.url+v1.PathHealthz, http.StatusOK, &h)
	if h.Status != "ok" || !strings.HasPrefix(h.AppraisalPolicyID, "sha256:") {
		t.Fatalf("healthz %+v", h)
	}
}

func getJSON(t *testing.T, url string, wantCode int, out any) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != wantCode {
		t.Fatalf("GET %s: %d, want %d", url, resp.StatusCode, wantCode)
	}
	if err := json.NewDecoder(resp.Body).Decode(out); err != nil {
		t.Fatal(err)
	}
}

// Every refusal of SPEC's list is a 403 with its exact reason.
func TestRejections(t *testing.T) {
	t.Parallel()
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	expiredBuild := [48]byte(bytes.Repeat([]byte{0x77}, 48))
	s := startServer(t, refYAML(fmt.Sprintf("  - value: %q\n    label: old-build\n    expires: %q\n", hex.EncodeToString(expiredBuild[:]), past)), nil)
	strict := startServer(t, refYAML("min_tcb: {bootloader: 0, tee: 0, snp: 9, microcode: 0}\n"), nil)
	other := startServer(t, refYAML(""), nil)
	ctx := context.Background()
	g := newGuest(t, sim.Options{})

	unknownBuild := [48]byte(bytes.Repeat([]byte{0x11}, 48))
	selfMade, err := testkit.NewChain(testkit.ChainOptions{OwnKeys: true})
	if err != nil {
		t.Fatal(err)
	}

	type tc struct {
		name string
		srv  *server
		req  func() v1.AttestRequest
		want attest.Reason
	}
	cases := []tc{
		{"nonce under another verifier's key", s, func() v1.AttestRequest { return g.request(other.challenge(t), false) }, attest.ReasonNonceInvalid},
		{"REPORT_DATA not matching rule 2", s, func() v1.AttestRequest {
			req := g.request(s.challenge(t), false)
			req.TEEPubKey = newGuest(t, sim.Options{}).jwk // a relay's key
			return req
		}, attest.ReasonReportDataMismatch},
		{"REPORT_DATA is the nonce but a key is sent", s, func() v1.AttestRequest {
			req := g.request(s.challenge(t), true)
			req.TEEPubKey = g.jwk
			return req
		}, attest.ReasonReportDataMismatch},
		{"DEBUG policy", s, func() v1.AttestRequest { return newGuest(t, sim.Options{Debug: true}).request(s.challenge(t), false) }, attest.ReasonDebugEnabled},
		{"VMPL 1 when only 0 is allowed", s, func() v1.AttestRequest { return newGuest(t, sim.Options{VMPL: 1}).request(s.challenge(t), false) }, attest.ReasonVMPLNotAllowed},
		{"unknown measurement", s, func() v1.AttestRequest {
			return newGuest(t, sim.Options{Measurement: &unknownBuild}).request(s.challenge(t), false)
		}, attest.ReasonMeasurementMismatch},
		{"expired reference value", s, func() v1.AttestRequest {
			return newGuest(t, sim.Options{Measurement: &expiredBuild}).request(s.challenge(t), false)
		}, attest.ReasonMeasurementMismatch},
		{"TCB under min_tcb", strict, func() v1.AttestRequest { return g.request(strict.challenge(t), false) }, attest.ReasonTCBBelowMinimum},
		{"forged signature", s, func() v1.AttestRequest {
			req := g.request(s.challenge(t), false)
			req.Evidence.Report[0x90] ^= 1 // the measurement
			return req
		}, attest.ReasonSignatureInvalid},
		{"chain under another root", s, func() v1.AttestRequest {
			n := s.challenge(t)
			req := g.request(n, false)
			req.Evidence.Report = selfMade.Report(testkit.ReportFields{Measurement: approved, ReportData: attest.BindReportData(attest.Nonce(n), g.tp)})
			req.Evidence.CertTable = selfMade.CertTable()
			return req
		}, attest.ReasonCertChainInvalid},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			_, err := c.srv.c.Attest(ctx, c.req())
			var e *client.APIError
			if !errors.As(err, &e) || e.Status != http.StatusForbidden || e.Reason != string(c.want) {
				t.Fatalf("got %v, want 403 %s", err, c.want)
			}
		})
	}
}

func TestReplayAndExpiry(t *testing.T) {
	t.Parallel()
	s := startServer(t, refYAML(""), nil)
	g := newGuest(t, sim.Options{})
	ctx := context.Background()
	req := g.request(s.challenge(t), false)
	if _, err := s.c.Attest(ctx, req); err != nil {
		t.Fatal(err)
	}
	if got := reasonOf(func() error { _, err := s.c.Attest(ctx, req); return err }()); got != "nonce_replayed" {
		t.Fatalf("replay: %s", got)
	}
	late := g.request(s.challenge(t), false)
	s.clock.Add(121 * time.Second)
	if got := reasonOf(func() error { _, err := s.c.Attest(ctx, late); return err }()); got != "nonce_expired" {
		t.Fatalf("expired: %s", got)
	}
}

// A rejected attempt does not consume the nonce: the guest can retry.
func TestRejectionConsumesNothing(t *testing.T) {
	t.Parallel()
	s := startServer(t, refYAML(""), nil)
	g := newGuest(t, sim.Options{})
	ctx := context.Background()
	req := g.request(s.challenge(t), false)
	bad := req
	bad.Evidence.Report = bytes.Clone(req.Evidence.Report)
	bad.Evidence.Report[0x2A0] ^= 1
	if got := reasonOf(func() error { _, err := s.c.Attest(ctx, bad); return err }()); got != "signature_invalid" {
		t.Fatalf("bad: %s", got)
	}
	if _, err := s.c.Attest(ctx, req); err != nil {
		t.Fatalf("retry with the same nonce: %v", err)
	}
}

func TestHostileInput(t *testing.T) {
	t.Parallel()
	s := startServer(t, refYAML(""), nil)
	g := newGuest(t, sim.Options{})
	good, _ := json.Marshal(g.request(s.challenge(t), false))
	withField := bytes.Replace(good, []byte(`{"nonce"`), []byte(`{"extra":1,"nonce"`), 1)
	shortNonce, _ := json.Marshal(v1.AttestRequest{Nonce: make([]byte, 32), TEE: v1.TEESEVSNP, Evidence: v1.SNPEvidence{Report: make([]byte, 1184)}})
	shortReport := g.request(s.challenge(t), false)
	shortReport.Evidence.Report = shortReport.Evidence.Report[:1000]
	shortReportJSON, _ := json.Marshal(shortReport)
	badKey := g.request(s.challenge(t), false)
	badKey.TEEPubKey = json.RawMessage(`{"kty":"oct","k":"c2VjcmV0"}`)
	badKeyJSON, _ := json.Marshal(badKey)
	cases := []struct {
		name, path, body string
		code             int
		reason           string
	}{
		{"body over 64 KiB", v1.PathAttest, `{"nonce":"` + strings.Repeat("A", 70<<10) + `"}`, 413, "malformed_evidence"},
		{"unknown JSON field", v1.PathAttest, string(withField), 400, "malformed_evidence"},
		{"not JSON", v1.PathAttest, "report=abc", 400, "malformed_evidence"},
		{"bad base64", v1.PathAttest, `{"nonce":"!!!","tee":"sev-snp","evidence":{"report":"AAAA"}}`, 400, "malformed_evidence"},
		{"wrong nonce size", v1.PathAttest, string(shortNonce), 400, "malformed_evidence"},
		{"wrong report size", v1.PathAttest, string(shortReportJSON), 400, "malformed_evidence"},
		{"symmetric tee_pubkey", v1.PathAttest, string(badKeyJSON), 400, "malformed_evidence"},
		{"two JSON objects", v1.PathAttest, string(good) + string(good), 400, "malformed_evidence"},
		{"deeply nested JSON", v1.PathAttest, strings.Repeat("[", 10000) + strings.Repeat("]", 10000), 400, "malformed_evidence"},
		{"unknown tee", v1.PathAttest, strings.Replace(string(good), `"sev-snp"`, `"tdx"`, 1), 400, "malformed_evidence"},
		{"random bytes to /verify", v1.PathVerify, string(bytes.Repeat([]byte{0xA5}, 2000)), 403, "nonce_invalid"},
		{"short body to /verify", v1.PathVerify, "hello", 400, "malformed_evidence"},
		{"empty challenge body over limit", v1.PathChallenge, strings.Repeat("x", 65<<10), 413, "malformed_evidence"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			resp, err := http.Post(s.url+c.path, "application/json", strings.NewReader(c.body))
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var e v1.Error
			json.NewDecoder(resp.Body).Decode(&e)
			if resp.StatusCode != c.code || e.Reason != c.reason {
				t.Fatalf("%d %+v, want %d %s", resp.StatusCode, e, c.code, c.reason)
			}
		})
	}
	resp, err := http.Get(s.url + v1.PathAttest)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Fatalf("GET /v1/attest: %d", resp.StatusCode)
	}
}

func TestPlainVerify(t *testing.T) {
	t.Parallel()
	s := startServer(t, refYAML(""), nil)
	g := newGuest(t, sim.Options{})
	n := s.challenge(t)
	report, table := g.dev.Report([64]byte(n))
	body := append(report, table...)
	post := func() (int, string) {
		resp, err := http.Post(s.url+v1.PathVerify, "application/octet-stream", bytes.NewReader(body))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]string
		json.NewDecoder(resp.Body).Decode(&m)
		return resp.StatusCode, m["status"] + m["reason"]
	}
	if code, got := post(); code != 200 || got != "verified" {
		t.Fatalf("first: %d %s", code, got)
	}
	if code, got := post(); code != 403 || got != "nonce_replayed" {
		t.Fatalf("second: %d %s", code, got)
	}
}

// A newly approved measurement is accepted without restart; a broken
// policy keeps the old one and shows in /readyz.
func TestHotReload(t *testing.T) {
	t.Parallel()
	next := [48]byte(bytes.Repeat([]byte{0x42}, 48))
	var policyPath string
	s := startServer(t, refYAML(""), func(c *config.Config) {
		policyPath = filepath.Join(filepath.Dir(c.ReferenceValues), "policy.rego")
		os.WriteFile(policyPath, []byte(policy.DefaultModule()), 0o600)
		c.Policy = policyPath
	})
	g2 := newGuest(t, sim.Options{Measurement: &next})
	ctx := context.Background()
	if got := reasonOf(func() error { _, err := s.c.Attest(ctx, g2.request(s.challenge(t), false)); return err }()); got != "measurement_mismatch" {
		t.Fatalf("before approval: %s", got)
	}
	var before v1.Health
	getJSON(t, s.url+v1.PathHealthz, 200, &before)
	ref := refYAML(fmt.Sprintf("  - value: %q\n    label: build-2\n", hex.EncodeToString(next[:])))
	os.WriteFile(filepath.Join(s.dir, "ref.yaml"), []byte(ref), 0o600)
	waitFor(t, func() bool {
		_, err := s.c.Attest(ctx, g2.request(s.challenge(t), false))
		return err == nil
	})
	var after v1.Health
	getJSON(t, s.url+v1.PathHealthz, 200, &after)
	if after.AppraisalPolicyID == before.AppraisalPolicyID {
		t.Fatal("appraisal policy id did not change with the reference values")
	}

	// A broken policy is refused; the replica stays ready (200, status
	// "degraded") on the last good one.
	os.WriteFile(policyPath, []byte("package trustgate\n\ndecision := {"), 0o600)
	waitFor(t, func() bool {
		var h v1.Health
		resp, err := http.Get(s.url + v1.PathReadyz)
		if err != nil {
			return false
		}
		defer resp.Body.Close()
		json.NewDecoder(resp.Body).Decode(&h)
		return resp.StatusCode == http.StatusOK && h.Status == "degraded" && strings.Contains(h.Error, "policy.rego")
	})
	if _, err := s.c.Attest(ctx, g2.request(s.challenge(t), false)); err != nil {
		t.Fatalf("after a broken policy the old one must still serve: %v", err)
	}
}

func waitFor(t *testing.T, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
}
