package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/admin"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/refvalues"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/testkit"
)

const adminToken = "admin-token-for-tests-0123456789"

// withAdmin gives a replica an admin listener with a bearer token file.
func withAdmin(t *testing.T) func(*config.Config) {
	path := filepath.Join(t.TempDir(), "admin.token")
	if err := os.WriteFile(path, []byte(adminToken+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	return func(c *config.Config) { c.AdminListen, c.AdminTokenFile = "127.0.0.1:0", path }
}

// serveAdmin serves s's admin API on a loopback port until the test ends
// and returns its base URL.
func serveAdmin(t *testing.T, s *server) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.app.ServeAdmin(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("ServeAdmin: %v", err)
		}
	})
	return "http://" + ln.Addr().String()
}

func adminDo(t *testing.T, method, url, body string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, url, strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func both(fs ...func(*config.Config)) func(*config.Config) {
	return func(c *config.Config) {
		for _, f := range fs {
			f(c)
		}
	}
}

// Through the admin API of one replica an operator approves a build and
// withdraws another; with Redis the change is in force at a replica
// without an admin API about a second later (SPEC: within 3 s) and at a
// replica started afterwards.
// The admin paths do not exist on the API listener.
func TestAdminAPIAcrossReplicas(t *testing.T) {
	t.Parallel()
	rs := testkit.StartRedisServer(t)
	shared := sharedKeys(t, rs.Addr)
	a := startServerAt(t, both(shared, withAdmin(t)), nil)
	b := startServerAt(t, shared, nil)
	adminURL := serveAdmin(t, a)
	ctx := context.Background()

	next := [48]byte{}
	copy(next[:], strings.Repeat("\x42", 48))
	g2 := newGuest(t, sim.Options{Measurement: &next})
	g1 := newGuest(t, sim.Options{})
	attestAt := func(s *server, g *guest) string {
		_, err := s.c.Attest(ctx, g.request(s.challenge(t), false))
		return reasonOf(err)
	}
	if r := attestAt(b, g2); r != "measurement_mismatch" {
		t.Fatalf("before approval: %s", r)
	}

	// The admin paths do not exist on the API listener, whatever the
	// credentials.
	for _, s := range []*server{a, b} {
		for _, m := range []string{"GET", "POST", "DELETE"} {
			if code, _ := adminDo(t, m, s.url+admin.PathReferenceValues, ""); code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
				t.Fatalf("%s %s on the API listener: %d", m, admin.PathReferenceValues, code)
			}
			if code, _ := adminDo(t, m, s.url+admin.PathMeasurements+"/build-1", ""); code != http.StatusNotFound && code != http.StatusMethodNotAllowed {
				t.Fatalf("%s on the API listener: %d", m, code)
			}
		}
	}
	if code, _ := adminDo(t, "GET", a.url+admin.PathReferenceValues, ""); code != http.StatusNotFound {
		t.Fatalf("GET on the API listener: %d, want 404", code)
	}

	start := time.Now()
	entry := fmt.Sprintf(`{"value":%q,"label":"build-2"}`, hex.EncodeToString(next[:]))
	if code, body := adminDo(t, "POST", adminURL+admin.PathMeasurements, entry); code != http.StatusCreated {
		t.Fatalf("approve: %d %s", code, body)
	}
	if code, body := adminDo(t, "DELETE", adminURL+admin.PathMeasurements+"/build-1", ""); code != http.StatusNoContent {
		t.Fatalf("withdraw: %d %s", code, body)
	}
	for attestAt(b, g2) != "" || attestAt(b, g1) != "measurement_mismatch" {
		// SPEC: 3 s. Replicas poll every second, so it takes about one;
		// the bound leaves room for a busy CI machine.
		if time.Since(start) > 5*time.Second {
			t.Fatal("the change is not in force at the other replica within 5 s")
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Logf("in force at the other replica after %v", time.Since(start).Round(time.Millisecond))

	// A replica started now (a restart) has the layer from the start.
	c := startServerAt(t, shared, nil)
	if r := attestAt(c, g2); r != "" {
		t.Fatalf("restarted replica, approved build: %s", r)
	}
	if r := attestAt(c, g1); r != "measurement_mismatch" {
		t.Fatalf("restarted replica, withdrawn build: %s", r)
	}
	var ha, hc v1.Health
	getJSON(t, a.url+v1.PathReadyz, http.StatusOK, &ha)
	getJSON(t, c.url+v1.PathReadyz, http.StatusOK, &hc)
	if ha.AppraisalPolicyID != hc.AppraisalPolicyID || ha.Status != "ok" {
		t.Fatalf("replicas: %+v vs %+v", ha, hc)
	}
	if logs := a.logText(); !strings.Contains(logs, `"audit":"admin"`) || strings.Contains(logs, adminToken) ||
		strings.Contains(logs, hex.EncodeToString(next[:])) {
		t.Fatalf("audit log: %s", logs)
	}
}

// Without Redis the admin layer is the replica's own, and the server says
// so loudly at start.
func TestAdminWithoutRedisWarns(t *testing.T) {
	t.Parallel()
	s := startServerAt(t, withAdmin(t), nil)
	if !strings.Contains(s.logText(), "this replica's alone") {
		t.Fatalf("no warning: %s", s.logText())
	}
	adminURL := serveAdmin(t, s)
	if code, body := adminDo(t, "GET", adminURL+admin.PathReferenceValues, ""); code != http.StatusOK || !strings.Contains(body, `"build-1"`) {
		t.Fatalf("GET: %d %s", code, body)
	}
	req, _ := http.NewRequest("GET", adminURL+admin.PathReferenceValues, nil)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusUnauthorized {
		t.Fatalf("no token: %d", resp.StatusCode)
	}
}

func TestAdminConfig(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	open := filepath.Join(dir, "open.token")
	short := filepath.Join(dir, "short.token")
	os.WriteFile(open, []byte(adminToken), 0o644)
	os.WriteFile(short, []byte("short"), 0o600)
	for name, mut := range map[string]func(*config.Config){
		"token file open to others": func(c *config.Config) { c.AdminListen, c.AdminTokenFile = "127.0.0.1:0", open },
		"token too short":           func(c *config.Config) { c.AdminListen, c.AdminTokenFile = "127.0.0.1:0", short },
	} {
		cfg := config.Default()
		cfg.DevSimulator, cfg.Offline, cfg.CertCacheDir, cfg.StateDir = true, true, filepath.Join(dir, "certs"), filepath.Join(dir, "state")
		mut(&cfg)
		if a, err := New(context.Background(), cfg, Deps{}); err == nil {
			a.Close()
			t.Errorf("%s: accepted", name)
		}
	}
}

func writeTrustKeys(t *testing.T) (*ecdsa.PrivateKey, string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	path := filepath.Join(t.TempDir(), "trust.pem")
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	return k, path
}

// With refvalues_trust_key, an unsigned file does not start the server;
// an unsigned or badly signed update is refused: the old set serves,
// /readyz stays 200 but says "degraded" and why, and
// trustgate_config_reload_failures_total counts it. A signed update comes
// into force.
func TestSignedReferenceValues(t *testing.T) {
	t.Parallel()
	key, trust := writeTrustKeys(t)
	sign := func(path string) { signStamped(t, key, path) }

	// Unsigned at start: refused.
	dir := t.TempDir()
	cfg := config.Default()
	cfg.DevSimulator, cfg.Offline, cfg.CertCacheDir, cfg.StateDir = true, true, filepath.Join(dir, "certs"), filepath.Join(dir, "state")
	cfg.ReferenceValues, cfg.RefvaluesTrustKey = filepath.Join(dir, "ref.yaml"), trust
	writeFile(t, cfg.ReferenceValues, refYAML(""))
	if a, err := New(context.Background(), cfg, Deps{}); err == nil || !strings.Contains(err.Error(), "signature_missing") {
		if a != nil {
			a.Close()
		}
		t.Fatalf("unsigned at start: %v", err)
	}

	s := startServer(t, refYAML(""), func(c *config.Config) {
		c.RefvaluesTrustKey = trust
		sign(c.ReferenceValues)
	})
	ctx := context.Background()
	g := newGuest(t, sim.Options{})
	if _, err := s.c.Attest(ctx, g.request(s.challenge(t), false)); err != nil {
		t.Fatalf("signed set: %v", err)
	}
	var h0 v1.Health
	getJSON(t, s.url+v1.PathReadyz, http.StatusOK, &h0)

	// An update that drops every approval, unsigned (the old .sig stays);
	// it keeps the version line, as an edit does.
	refPath := filepath.Join(s.dir, "ref.yaml")
	writeFile(t, refPath, "version: 1\nmeasurements: []\n")
	var h v1.Health
	waitFor(t, func() bool {
		getJSON(t, s.url+v1.PathReadyz, http.StatusOK, &h)
		return h.Status == "degraded"
	})
	if !strings.Contains(h.Error, "signature_invalid") || !strings.Contains(h.Error, refPath) || h.AppraisalPolicyID != h0.AppraisalPolicyID {
		t.Fatalf("/readyz: %+v", h)
	}
	if _, err := s.c.Attest(ctx, g.request(s.challenge(t), false)); err != nil {
		t.Fatalf("the old set must still serve: %v", err)
	}
	_, metrics := rawGet(t, s.url+v1.PathMetrics)
	if !strings.Contains(metrics, "trustgate_config_reload_failures_total{file=\"reference_values\",kind=\"invalid\"} 1\n") {
		t.Fatalf("reload failure not counted:\n%s", grepLines(metrics, "reload"))
	}

	// Signed: in force, /readyz ok again.
	sign(refPath)
	waitFor(t, func() bool {
		getJSON(t, s.url+v1.PathReadyz, http.StatusOK, &h)
		return h.Status == "ok" && h.AppraisalPolicyID != h0.AppraisalPolicyID
	})
	if _, err := s.c.Attest(ctx, g.request(s.challenge(t), false)); reasonOf(err) != "measurement_mismatch" {
		t.Fatalf("signed empty set: %v", err)
	}
}

// signStamped does what `trustgate refvalues sign` does: stamps the file
// at path with its next version and signs it.
func signStamped(t *testing.T, key *ecdsa.PrivateKey, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	f, _ := refvalues.FormatOf(path)
	// A fixed signing time: replicas that each sign the same file (as
	// several tests set them up) get the same bytes, whenever the clock
	// ticks over a second between them.
	stamped, _, err := refvalues.Stamp(b, f, time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC))
	if err != nil {
		t.Fatal(err)
	}
	sig, err := refvalues.SignFile(key, stamped)
	if err != nil {
		t.Fatal(err)
	}
	writeFile(t, path, string(stamped))
	writeFile(t, path+refvalues.SigSuffix, sig)
}

func grepLines(text, sub string) string {
	var out []string
	for _, l := range strings.Split(text, "\n") {
		if strings.Contains(l, sub) {
			out = append(out, l)
		}
	}
	return strings.Join(out, "\n")
}

// With policy_url the claims go to the external engine; an engine that
// does not answer in time is 503 policy_unavailable, never an allow.
func TestExternalPolicy(t *testing.T) {
	t.Parallel()
	var hang atomic.Bool
	release := make(chan struct{})
	defer close(release)
	ext := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Input struct {
				Measurement string `json:"measurement"`
			} `json:"input"`
		}
		json.NewDecoder(r.Body).Decode(&body)
		if hang.Load() {
			select {
			case <-release:
			case <-r.Context().Done():
			}
			return
		}
		if body.Input.Measurement == hex.EncodeToString(approved[:]) {
			fmt.Fprint(w, `{"result":{"allow":true,"label":"opa-build","resources":[]}}`)
			return
		}
		fmt.Fprint(w, `{"result":{"allow":false,"reasons":["measurement_mismatch"]}}`)
	}))
	defer ext.Close()
	s := startServer(t, "", func(c *config.Config) {
		c.ReferenceValues, c.PolicyURL, c.PolicyTimeout = "", ext.URL+"/v1/data/trustgate/decision", 2*time.Second
	})
	ctx := context.Background()
	g := newGuest(t, sim.Options{})
	if _, err := s.c.Attest(ctx, g.request(s.challenge(t), false)); err != nil {
		t.Fatalf("external allow: %v", err)
	}
	hang.Store(true)
	_, err := s.c.Attest(ctx, g.request(s.challenge(t), false))
	if reasonOf(err) != "policy_unavailable" || statusOf(err) != http.StatusServiceUnavailable {
		t.Fatalf("hanging engine: %v", err)
	}
	_, metrics := rawGet(t, s.url+v1.PathMetrics)
	if !strings.Contains(metrics, `trustgate_attestations_total{reason="policy_unavailable",result="fail",tee="sev-snp"} 1`) {
		t.Fatalf("not counted:\n%s", grepLines(metrics, "policy_unavailable"))
	}
}

// The admin listener serves TLS with the API's certificate and admits a
// client certificate under admin_client_ca as well as the token.
func TestAdminTLSClientCertificate(t *testing.T) {
	t.Parallel()
	pki := testkit.NewPKI(t)
	s := startServerAt(t, both(withAdmin(t), func(c *config.Config) {
		c.TLSCert, c.TLSKey, c.AdminClientCA = pki.ServerCert, pki.ServerKey, pki.CAFile
	}), nil)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.app.ServeAdmin(ctx, ln) }()
	defer func() { cancel(); <-done }()
	url := "https://" + ln.Addr().String() + admin.PathReferenceValues
	cert, err := tls.LoadX509KeyPair(pki.ClientCert, pki.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		certs []tls.Certificate
		auth  string
		want  int
	}{
		{"client certificate", []tls.Certificate{cert}, "", http.StatusOK},
		{"token", nil, "Bearer " + adminToken, http.StatusOK},
		{"neither", nil, "", http.StatusUnauthorized},
	} {
		c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool, Certificates: tc.certs}}}
		req, _ := http.NewRequest("GET", url, nil)
		if tc.auth != "" {
			req.Header.Set("Authorization", tc.auth)
		}
		resp, err := c.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("%s: %d, want %d", tc.name, resp.StatusCode, tc.want)
		}
	}
	// Plain HTTP to the TLS admin listener gets nothing.
	if resp, err := http.Get("http://" + ln.Addr().String() + admin.PathReferenceValues); err == nil && resp.StatusCode == http.StatusOK {
		t.Fatal("plain HTTP served")
	}
}
