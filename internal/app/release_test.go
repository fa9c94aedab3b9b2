package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/client"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/release"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/token"
	"github.com/trustgate/trustgate/internal/verifier"
)

const dbPassword = "correct horse battery staple"

// resourceDir makes an owner-only resource store holding files.
func resourceDir(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := filepath.Join(t.TempDir(), "resources")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	for name, v := range files {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(v), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

// startReleasing is a verifier with a resource store: build-1 is granted
// db-password; other-secret is in the store but granted to nobody.
func startReleasing(t *testing.T) *server {
	t.Helper()
	dir := resourceDir(t, map[string]string{"db-password": dbPassword, "other-secret": "not for you"})
	return startServer(t, refYAML(""), func(c *config.Config) { c.Resources = dir })
}

// attestToken attests g with its key and returns the token.
func attestToken(t *testing.T, s *server, g *guest) string {
	t.Helper()
	resp, err := s.c.Attest(context.Background(), g.request(s.challenge(t), false))
	if err != nil {
		t.Fatal(err)
	}
	return resp.Token
}

// openRelease opens a release of s as the agent does, trusting s's JWKS.
func openRelease(s *server, jwe string, g *guest, tok string, names ...string) (map[string][]byte, error) {
	return client.OpenRelease(jwe, client.ReleaseCheck{Key: g.key, Token: tok, Resources: names, VerifierKeys: s.app.tokens.JWKS()})
}

// The whole of SPEC rule 4: the token buys the granted resource once,
// encrypted so that the guest's key opens it; the log keeps none of it.
func TestReleaseOnceEncryptedToTheGuest(t *testing.T) {
	t.Parallel()
	s := startReleasing(t)
	g := newGuest(t, sim.Options{})
	ctx := context.Background()
	tok := attestToken(t, s, g)

	jwe, err := s.c.Release(ctx, tok, []string{"db-password"})
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(jwe, dbPassword) || strings.Count(jwe, ".") != 4 {
		t.Fatalf("not a compact JWE hiding the secret: %q", jwe)
	}
	got, err := openRelease(s, jwe, g, tok, "db-password")
	if err != nil {
		t.Fatal(err)
	}
	if string(got["db-password"]) != dbPassword || len(got) != 1 {
		t.Fatalf("released %q", got)
	}

	_, err = s.c.Release(ctx, tok, []string{"db-password"})
	if r := reasonOf(err); r != "token_replayed" || statusOf(err) != 401 {
		t.Fatalf("second use: %v, want 401 token_replayed", err)
	}
	logs := s.logText()
	for _, secret := range []string{dbPassword, tok, jwe} {
		if strings.Contains(logs, secret) {
			t.Errorf("the log holds %q", secret)
		}
	}
	if !strings.Contains(logs, `"msg":"release","result":"pass"`) ||
		!strings.Contains(logs, `"result":"fail","reason":"token_replayed"`) {
		t.Errorf("log lacks the release lines:\n%s", logs)
	}
}

// Each refusal has its status and reason, and consumes nothing: the same
// token still releases afterwards.
func TestReleaseRefusals(t *testing.T) {
	t.Parallel()
	s := startReleasing(t)
	g := newGuest(t, sim.Options{})
	ctx := context.Background()
	tok := attestToken(t, s, g)

	cases := []struct {
		name   string
		tok    string
		names  []string
		status int
		reason string
	}{
		{"not granted", tok, []string{"other-secret"}, 403, "resource_forbidden"},
		{"one granted, one not", tok, []string{"db-password", "other-secret"}, 403, "resource_forbidden"},
		{"path traversal", tok, []string{"../x"}, 400, "malformed_evidence"},
		{"hidden file", tok, []string{".x"}, 400, "malformed_evidence"},
		{"empty name", tok, []string{""}, 400, "malformed_evidence"},
		{"no names", tok, nil, 400, "malformed_evidence"},
		{"twice the same", tok, []string{"db-password", "db-password"}, 400, "malformed_evidence"},
		{"no token", "", []string{"db-password"}, 401, "token_invalid"},
		{"not a token", "x.y.z", []string{"db-password"}, 401, "token_invalid"},
	}
	for _, c := range cases {
		_, err := s.c.Release(ctx, c.tok, c.names)
		if reasonOf(err) != c.reason || statusOf(err) != c.status {
			t.Errorf("%s: %v, want %d %s", c.name, err, c.status, c.reason)
		}
	}
	if _, err := s.c.Release(ctx, tok, []string{"db-password"}); err != nil {
		t.Fatalf("after the refusals the token must still release: %v", err)
	}
}

func TestReleaseRefusesTokens(t *testing.T) {
	t.Parallel()
	s := startReleasing(t)
	g := newGuest(t, sim.Options{})
	ctx := context.Background()

	// Expired: the token lives 60 s.
	tok := attestToken(t, s, g)
	s.clock.Add(61 * time.Second)
	if _, err := s.c.Release(ctx, tok, []string{"db-password"}); reasonOf(err) != "token_invalid" {
		t.Errorf("expired token: %v", err)
	}

	// Signed by another key, otherwise identical to a genuine one.
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	forger, err := token.New(token.Options{Key: other, Now: s.clock.Now})
	if err != nil {
		t.Fatal(err)
	}
	key, err := verifier.ParseTEEPubKey(g.jwk)
	if err != nil {
		t.Fatal(err)
	}
	forged, _, _, err := forger.Issue(token.Appraisal{TEE: v1.TEESEVSNP, Status: "affirming", Resources: []string{"db-password"}, TEEPubKey: key})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.Release(ctx, forged, []string{"db-password"}); reasonOf(err) != "token_invalid" {
		t.Errorf("token under another key: %v", err)
	}

	// A token without tee_pubkey: nothing can be encrypted to its guest.
	resp, err := s.c.Attest(ctx, g.request(s.challenge(t), true))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.Release(ctx, resp.Token, []string{"db-password"}); reasonOf(err) != "resource_forbidden" {
		t.Errorf("token without tee_pubkey: %v", err)
	}
}

// A token bound to another guest's key releases a JWE that this guest
// cannot open, and the one it is bound to can.
func TestReleaseOnlyTheBoundKeyDecrypts(t *testing.T) {
	t.Parallel()
	s := startReleasing(t)
	owner, agent := newGuest(t, sim.Options{}), newGuest(t, sim.Options{})
	tok := attestToken(t, s, owner)
	jwe, err := s.c.Release(context.Background(), tok, []string{"db-password"})
	if err != nil {
		t.Fatal(err)
	}
	if got, err := openRelease(s, jwe, agent, tok, "db-password"); err == nil {
		t.Fatalf("another key decrypted the release: %q", got)
	}
	if got, err := openRelease(s, jwe, owner, tok, "db-password"); err != nil || string(got["db-password"]) != dbPassword {
		t.Fatalf("the bound key: %q, %v", got, err)
	}
}

// A relay that forwards a genuine guest's evidence with its own tee_pubkey
// (to get the secrets encrypted to itself) is refused: REPORT_DATA binds
// the guest's key.
func TestRelayWithItsOwnKeyRefused(t *testing.T) {
	t.Parallel()
	s := startReleasing(t)
	victim, relay := newGuest(t, sim.Options{}), newGuest(t, sim.Options{})
	req := victim.request(s.challenge(t), false)
	req.TEEPubKey = relay.jwk
	if _, err := s.c.Attest(context.Background(), req); reasonOf(err) != "report_data_mismatch" {
		t.Fatalf("relayed evidence with the relay's key: %v", err)
	}
}

// Without --resources nothing is released.
func TestReleaseWithoutStore(t *testing.T) {
	t.Parallel()
	s := startServer(t, refYAML(""), nil)
	g := newGuest(t, sim.Options{})
	if _, err := s.c.Release(context.Background(), attestToken(t, s, g), []string{"db-password"}); reasonOf(err) != "resource_forbidden" {
		t.Fatalf("release without a store: %v", err)
	}
}

// A store readable by others, or with a symlink, stops the server before
// it starts, with every problem listed.
func TestInsecureResourceStoreRefused(t *testing.T) {
	t.Parallel()
	dir := resourceDir(t, map[string]string{"ok": "x", "open": "y"})
	os.Chmod(filepath.Join(dir, "open"), 0o644)
	os.Symlink("/etc/passwd", filepath.Join(dir, "link"))
	os.Chmod(dir, 0o755)
	cfg := config.Default()
	cfg.Listen, cfg.DevSimulator, cfg.Offline, cfg.CertCacheDir, cfg.Resources = "127.0.0.1:0", true, true, t.TempDir(), dir
	a, err := New(context.Background(), cfg, Deps{})
	if err == nil {
		a.Close()
		t.Fatal("an insecure resource store was accepted")
	}
	for _, want := range []string{"resources", dir + " has mode 0755", "open has mode 0644", "link is not a regular file"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %q:\n%v", want, err)
		}
	}
}

// Hostile bodies and headers to /v1/release: each a 4xx with its reason,
// never a 500.
func TestReleaseHostileInput(t *testing.T) {
	t.Parallel()
	s := startReleasing(t)
	many, _ := json.Marshal(v1.ReleaseRequest{Resources: slices.Repeat([]string{"db-password"}, 100)})
	cases := []struct {
		name, auth, body string
		code             int
		reason           string
	}{
		{"no bearer", "", `{"resources":["db-password"]}`, 401, "token_invalid"},
		{"basic auth", "Basic dXNlcjpwYXNz", `{"resources":["db-password"]}`, 401, "token_invalid"},
		{"not JSON", "Bearer x", "resources=db-password", 400, "malformed_evidence"},
		{"unknown field", "Bearer x", `{"resources":["db-password"],"all":true}`, 400, "malformed_evidence"},
		{"resources not a list", "Bearer x", `{"resources":"db-password"}`, 400, "malformed_evidence"},
		{"nested", "Bearer x", strings.Repeat("[", 5000) + strings.Repeat("]", 5000), 400, "malformed_evidence"},
		{"over 64 KiB", "Bearer x", `{"resources":["` + strings.Repeat("a", 70<<10) + `"]}`, 413, "malformed_evidence"},
		{"100 names, bad token", "Bearer x", string(many), 401, "token_invalid"},
		{"huge token", "Bearer " + strings.Repeat("e", 8<<10), `{"resources":["db-password"]}`, 401, "token_invalid"},
	}
	for _, c := range cases {
		req, _ := http.NewRequest(http.MethodPost, s.url+v1.PathRelease, strings.NewReader(c.body))
		if c.auth != "" {
			req.Header.Set("Authorization", c.auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		var e v1.Error
		json.NewDecoder(resp.Body).Decode(&e)
		resp.Body.Close()
		if resp.StatusCode != c.code || e.Reason != c.reason {
			t.Errorf("%s: %d %+v, want %d %s", c.name, resp.StatusCode, e, c.code, c.reason)
		}
	}
	// 65 distinct names with a valid token: one more than a release takes.
	g := newGuest(t, sim.Options{})
	var names []string
	for i := range release.MaxResources + 1 {
		names = append(names, fmt.Sprintf("r%d", i))
	}
	if _, err := s.c.Release(context.Background(), attestToken(t, s, g), names); reasonOf(err) != "malformed_evidence" {
		t.Errorf("%d names: %v", len(names), err)
	}
}

// A release refused after the resources are read (a granted resource is
// missing from the store) uses nothing up: once it is there, the same
// token releases.
func TestReleaseRefusedAtTheStoreConsumesNothing(t *testing.T) {
	t.Parallel()
	dir := resourceDir(t, map[string]string{})
	s := startServer(t, refYAML(""), func(c *config.Config) { c.Resources = dir })
	g := newGuest(t, sim.Options{})
	tok := attestToken(t, s, g)
	if _, err := s.c.Release(context.Background(), tok, []string{"db-password"}); reasonOf(err) != "resource_forbidden" {
		t.Fatalf("granted but not stored: %v", err)
	}
	if err := os.WriteFile(filepath.Join(dir, "db-password"), []byte(dbPassword), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.Release(context.Background(), tok, []string{"db-password"}); err != nil {
		t.Fatalf("the same token after the store was mended: %v", err)
	}
}

// A --dev-simulator verifier given the production verifier's token key
// file cannot mint tokens the production one honours: at the production
// /v1/release a dev token is 401 token_invalid.
func TestDevTokenRefusedInProduction(t *testing.T) {
	t.Parallel()
	tokenKey := filepath.Join(t.TempDir(), "token.pem")
	writeTokenKey(t, tokenKey)
	res := resourceDir(t, map[string]string{"db-password": dbPassword})
	dev := startServer(t, refYAML(""), func(c *config.Config) { c.TokenKeyFile, c.Resources = tokenKey, res })
	prod := startServer(t, refYAML(""), func(c *config.Config) { c.DevSimulator, c.TokenKeyFile, c.Resources = false, tokenKey, res })
	if !strings.Contains(dev.logText(), "derived from token_key_file") {
		t.Errorf("the dev verifier does not say it signs with a derived key:\n%s", dev.logText())
	}
	tok := attestToken(t, dev, newGuest(t, sim.Options{}))
	_, err := prod.c.Release(context.Background(), tok, []string{"db-password"})
	if reasonOf(err) != "token_invalid" || statusOf(err) != 401 {
		t.Fatalf("a dev token at the production verifier: %v, want 401 token_invalid", err)
	}
	if _, err := dev.c.Release(context.Background(), tok, []string{"db-password"}); err != nil {
		t.Fatalf("the same token at the dev verifier: %v", err)
	}
}
