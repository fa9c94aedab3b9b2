package app

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/trustgate/trustgate/api/v1"

	"github.com/trustgate/trustgate/internal/certs"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/testkit"
	"github.com/trustgate/trustgate/internal/tiered"
)

// serve warms the certificate cache for warm_chips at start: each chip's
// VCEK is fetched once from the KDS into the disk tier, where a verifier
// that is offline finds it; chip ids are never logged.
func TestServeWarmsCertificateCache(t *testing.T) {
	t.Parallel()
	kds := testkit.NewKDS(t, testkit.KDSOptions{})
	if err := kds.ServeTestdata(filepath.Join("..", "..", "testdata", "snp")); err != nil {
		t.Fatal(err)
	}
	milan := "Milan:c38427a30d4c7af9d96f7a15b97269825a64cb76a2352ffd5d18115d89ad473f8e8c0bcd9a5d9286612bad4aadfb4426205a3b9e4fea82301135a170e477524e:bl=3,tee=0,snp=8,ucode=115"
	turin := "Turin:0910b4f884ff4ba9:fmc=1,bl=3,tee=2,snp=5,ucode=97"
	list := filepath.Join(t.TempDir(), "chips.txt")
	if err := os.WriteFile(list, []byte("# fleet\n"+milan+"\n\n"+turin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	cacheDir := t.TempDir()
	s := startServer(t, refYAML(""), func(c *config.Config) {
		c.Offline, c.KDSURL, c.KDSRate, c.WarmChips, c.CertCacheDir = false, kds.URL, 1, list, cacheDir
	})
	waitFor(t, func() bool { return len(kds.Requests("vcek")) >= 2 && len(kds.Requests("crl")) >= 2 })

	offline, err := certs.New(certs.Config{Settings: tiered.Settings{Offline: true, Dir: cacheDir}})
	if err != nil {
		t.Fatal(err)
	}
	defer offline.Close()
	for _, chip := range []string{milan, turin} {
		req, err := certs.ParseKeyRequest(chip)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := offline.EndorsementKey(context.Background(), req); err != nil {
			t.Errorf("%s not in the disk cache after warming: %v", chip[:5], err)
		}
	}
	if n := len(kds.Requests("vcek")); n != 2 {
		t.Errorf("%d VCEK requests for 2 chips", n)
	}
	// The certificate service reports to /metrics.
	resp, err := http.Get(s.url + v1.PathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`trustgate_kds_requests_total{code="200",kind="vcek"} 2`, `trustgate_cert_cache_lookups_total{result="miss"} 2`} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	// The fake KDS cannot sign CRLs with AMD's ARK: warming reports that.
	waitFor(t, func() bool { return strings.Contains(s.logText(), "warm_chips: some certificates could not be had") })
	if logs := s.logText(); strings.Contains(logs, "c38427a30d4c") || strings.Contains(logs, "0910b4f884ff4ba9") {
		t.Errorf("a chip id was logged:\n%s", logs)
	}
}

// Replicas with the same redis share the certificate cache: what one
// warmed, another that is offline and has an empty disk cache serves.
func TestServeSharesCertificatesThroughRedis(t *testing.T) {
	t.Parallel()
	rdb := testkit.StartRedis(t)
	url := "redis://" + rdb.Options().Addr + "/0"
	kds := testkit.NewKDS(t, testkit.KDSOptions{})
	if err := kds.ServeTestdata(filepath.Join("..", "..", "testdata", "snp")); err != nil {
		t.Fatal(err)
	}
	turin := "Turin:0910b4f884ff4ba9:fmc=1,bl=3,tee=2,snp=5,ucode=97"
	list := filepath.Join(t.TempDir(), "chips.txt")
	if err := os.WriteFile(list, []byte(turin+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	startServer(t, refYAML(""), func(c *config.Config) {
		c.Offline, c.KDSURL, c.KDSRate, c.WarmChips, c.Redis = false, kds.URL, 1, list, url
	})
	waitFor(t, func() bool { return len(kds.Requests("vcek")) == 1 })

	req, err := certs.ParseKeyRequest(turin)
	if err != nil {
		t.Fatal(err)
	}
	replica := startServer(t, refYAML(""), func(c *config.Config) { c.Redis = url })
	waitFor(t, func() bool {
		_, err := replica.app.certs.EndorsementKey(context.Background(), req)
		return err == nil
	})
	if n := len(kds.Requests("vcek")); n != 1 {
		t.Errorf("%d VCEK requests, want the one of the first replica", n)
	}
}

// Replicas sharing Redis (and the nonce and token keys) share the
// single-use records: a nonce consumed at one is replayed at the other, a
// token used at one is used up at the other; with Redis down, attestation
// fails closed with 503 store_unavailable and /readyz says why.
func TestReplicasShareSingleUseRecords(t *testing.T) {
	t.Parallel()
	rdb := testkit.StartRedis(t)
	dir := t.TempDir()
	nonceKey, tokenKey := filepath.Join(dir, "nonce.key"), filepath.Join(dir, "token.pem")
	os.WriteFile(nonceKey, []byte(strings.Repeat("ab", 32)), 0o600)
	writeTokenKey(t, tokenKey)
	res := resourceDir(t, map[string]string{"db-password": dbPassword})
	shared := func(c *config.Config) {
		c.Redis, c.NonceKeyFile, c.TokenKeyFile, c.Resources = "redis://"+rdb.Options().Addr, nonceKey, tokenKey, res
	}
	a, b := startServer(t, refYAML(""), shared), startServer(t, refYAML(""), shared)
	g := newGuest(t, sim.Options{})
	ctx := context.Background()

	req := g.request(a.challenge(t), false)
	resp, err := a.c.Attest(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := b.c.Attest(ctx, req); reasonOf(err) != "nonce_replayed" {
		t.Fatalf("nonce consumed at replica a, replayed at b: %v", err)
	}
	if _, err := a.c.Release(ctx, resp.Token, []string{"db-password"}); err != nil {
		t.Fatal(err)
	}
	if _, err := b.c.Release(ctx, resp.Token, []string{"db-password"}); reasonOf(err) != "token_replayed" {
		t.Fatalf("token used at replica a, again at b: %v", err)
	}

	rdb.Shutdown(ctx) // NOSAVE is the default without persistence
	_, err = a.c.Attest(ctx, g.request(a.challenge(t), false))
	if reasonOf(err) != "store_unavailable" || statusOf(err) != 503 {
		t.Fatalf("Redis down: %v, want 503 store_unavailable", err)
	}
	var h v1.Health
	getJSON(t, a.url+v1.PathReadyz, http.StatusServiceUnavailable, &h)
	if h.Status != "unavailable" || !strings.Contains(h.Error, "redis") {
		t.Fatalf("readyz with Redis down: %+v", h)
	}
}

// writeTokenKey writes a fresh P-256 token key (PEM) to path.
func writeTokenKey(t *testing.T, path string) {
	t.Helper()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, err := x509.MarshalECPrivateKey(k)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
}

// config owns its defaults, and they are the ones internal/certs documents
// as its own: serve with no configuration behaves as certs.New with a zero
// Config would.
func TestConfigCertDefaultsAreCerts(t *testing.T) {
	t.Parallel()
	d := config.Default()
	for _, c := range []struct {
		key       string
		got, want any
	}{
		{"kds_url", d.KDSURL, certs.DefaultKDSURL},
		{"kds_rate", d.KDSRate, certs.DefaultRateInterval},
		{"cert_fetch_wait", d.CertFetchWait, certs.DefaultFetchWait},
		{"cert_max_staleness", d.CertMaxStaleness, certs.DefaultMaxStaleness},
		{"crl_grace", d.CRLGrace, certs.DefaultCRLGrace},
	} {
		if c.got != c.want {
			t.Errorf("config default %s = %v, certs' default %v", c.key, c.got, c.want)
		}
	}
}

// A config duration of 0 means none in certs (negative there); any other
// passes as it is. The one place where the two conventions meet.
func TestCertsDuration(t *testing.T) {
	t.Parallel()
	for in, want := range map[time.Duration]time.Duration{0: -1, time.Second: time.Second, 24 * time.Hour: 24 * time.Hour} {
		if got := certsDuration(in); got != want {
			t.Errorf("certsDuration(%v) = %v, want %v", in, got, want)
		}
	}
}
