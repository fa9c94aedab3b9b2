package app

import (
	"context"
	"crypto/x509"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/admin"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/tee/tdx"
	"github.com/trustgate/trustgate/internal/testkit"
)

// secrets are the raw values that must not show anywhere, by name.
type secrets map[string][]byte

func (s secrets) add(name string, v []byte) {
	if len(v) > 0 && strings.Trim(string(v), "\x00") != "" { // all zeros is no one's value
		s[name] = append([]byte(nil), v...)
	}
}

// forms are the ways a value could be printed: hex (either case) and the
// four base64 alphabets.
func forms(v []byte) []string {
	h := hex.EncodeToString(v)
	return []string{h, strings.ToUpper(h),
		base64.StdEncoding.EncodeToString(v), base64.RawStdEncoding.EncodeToString(v),
		base64.URLEncoding.EncodeToString(v), base64.RawURLEncoding.EncodeToString(v)}
}

// dumpRedis renders every key of the database with its value.
func dumpRedis(t *testing.T, rdb *redis.Client) string {
	t.Helper()
	ctx := context.Background()
	keys, err := rdb.Keys(ctx, "*").Result()
	if err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	for _, k := range keys {
		typ, _ := rdb.Type(ctx, k).Result()
		var v any
		switch typ {
		case "string":
			v, err = rdb.Get(ctx, k).Result()
		case "hash":
			v, err = rdb.HGetAll(ctx, k).Result()
		case "set":
			v, err = rdb.SMembers(ctx, k).Result()
		case "zset":
			v, err = rdb.ZRangeWithScores(ctx, k, 0, -1).Result()
		case "list":
			v, err = rdb.LRange(ctx, k, 0, -1).Result()
		default:
			v = "(" + typ + ")"
		}
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s %s %v\n", k, typ, v)
	}
	if len(keys) == 0 {
		t.Fatal("redis holds nothing: the flow did not use it")
	}
	return b.String()
}

// The whole flow's logs, metrics, admin listing and Redis keys and values
// hold no REPORT_ID, chip id, measurement, REPORT_DATA, nonce, token, JWE,
// secret or key, in hex or base64: two replicas sharing Redis serve
// attestations (affirmed, replayed, mismatched, a clone on another chip),
// releases (one replayed), and a TDX quote.
func TestPrivacyOfTheWholeFlow(t *testing.T) {
	t.Parallel()
	rdb := testkit.StartRedis(t)
	dir := t.TempDir()
	nonceKey, tokenKey, launchKey := filepath.Join(dir, "nonce.key"), filepath.Join(dir, "token.pem"), filepath.Join(dir, "launch.key")
	nonceHex := strings.Repeat("9c", 40)
	os.WriteFile(nonceKey, []byte(nonceHex), 0o600)
	writeTokenKey(t, tokenKey)
	res := resourceDir(t, map[string]string{"db-password": dbPassword})
	shared := func(c *config.Config) {
		c.Redis, c.NonceKeyFile, c.TokenKeyFile, c.LaunchKeyFile, c.Resources = "redis://"+rdb.Options().Addr, nonceKey, tokenKey, launchKey, res
	}
	a := startServer(t, refYAML(""), both(shared, withAdmin(t)))
	b := startServer(t, refYAML(""), shared)
	adminURL := serveAdmin(t, a)

	raw := secrets{}
	kb, _ := hex.DecodeString(nonceHex)
	raw.add("nonce key", kb)
	lk, _ := os.ReadFile(launchKey)
	lkb, _ := hex.DecodeString(strings.TrimSpace(string(lk)))
	raw.add("launch key", lkb)
	tk, _ := os.ReadFile(tokenKey)
	blk, _ := pem.Decode(tk)
	if k, err := x509.ParseECPrivateKey(blk.Bytes); err == nil {
		d, _ := k.Bytes()
		raw.add("token key", d)
	}
	raw.add("admin token", []byte(adminToken))
	raw.add("secret", []byte(dbPassword))
	raw.add("measurement", approved[:])

	ctx := context.Background()
	rid := [32]byte{0x3c, 0x91, 0x07, 0xee}
	other := [64]byte{0x77, 0x01, 0xfe}
	guests := []*guest{newGuest(t, sim.Options{ReportID: &rid}), newGuest(t, sim.Options{ReportID: &rid, ChipID: &other}), newGuest(t, sim.Options{})}
	for i, g := range guests {
		for j, s := range []*server{a, b, a} {
			n := s.challenge(t)
			raw.add(fmt.Sprintf("nonce %d.%d", i, j), n)
			req := g.request(n, j == 2)
			rep := req.Evidence.Report
			raw.add(fmt.Sprintf("report id %d", i), rep[0x140:0x160])
			raw.add(fmt.Sprintf("chip id %d", i), rep[0x1A0:0x1E0])
			raw.add(fmt.Sprintf("report data %d.%d", i, j), rep[0x50:0x90])
			raw.add(fmt.Sprintf("report %d.%d", i, j), rep)
			resp, err := s.c.Attest(ctx, req)
			if err != nil {
				t.Fatalf("guest %d attempt %d: %v", i, j, err)
			}
			raw.add(fmt.Sprintf("token %d.%d", i, j), []byte(resp.Token))
			if _, err := b.c.Attest(ctx, req); reasonOf(err) != "nonce_replayed" { // replay at the other replica
				t.Fatalf("replay: %v", err)
			}
			if j == 2 {
				continue
			}
			jwe, err := s.c.Release(ctx, resp.Token, []string{"db-password"})
			if err != nil {
				t.Fatal(err)
			}
			raw.add(fmt.Sprintf("jwe %d.%d", i, j), []byte(jwe))
			if _, err := b.c.Release(ctx, resp.Token, []string{"db-password"}); reasonOf(err) != "token_replayed" {
				t.Fatalf("token replay: %v", err)
			}
		}
		// REPORT_DATA bound to another nonce.
		bad := g.request(a.challenge(t), false)
		bad.Nonce = a.challenge(t)
		raw.add(fmt.Sprintf("unused nonce %d", i), bad.Nonce)
		if _, err := a.c.Attest(ctx, bad); reasonOf(err) != "report_data_mismatch" {
			t.Fatalf("mismatch: %v", err)
		}
	}

	// TDX: a real quote, verified here for its values, refused by the
	// verifier (no collateral service).
	quote, err := os.ReadFile(filepath.Join("..", "..", "testdata", "tdx", "teekit-phala-quote.dat"))
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2025, 11, 1, 0, 0, 0, 0, time.UTC)
	tc, err := tdx.New(tdx.Options{NoCollateral: true, Now: func() time.Time { return at }}).Verify(ctx, tdx.Evidence{Quote: quote})
	if err != nil {
		t.Fatal(err)
	}
	raw.add("mr_td", tc.MRTD)
	raw.add("mr_config_id", tc.MRConfigID)
	raw.add("rtmr0", tc.RTMR0)
	raw.add("tdx report data", tc.ReportData)
	raw.add("ppid", tc.PlatformID)
	raw.add("quote", quote)
	n := a.challenge(t)
	raw.add("tdx nonce", n)
	body, _ := json.Marshal(v1.AttestRequest{Nonce: n, TEE: v1.TEETDX, Evidence: v1.Evidence{Quote: quote}})
	if code, _ := post(t, http.DefaultClient, a.url+v1.PathAttest, "", body); code == http.StatusOK {
		t.Fatal("the TDX quote was affirmed without collateral")
	}

	// The flow did what it should: the clone was counted and numbered.
	code, listing := adminDo(t, "GET", adminURL+admin.PathLaunches, "")
	if code != 200 || !strings.Contains(listing, `"seq":6`) || !strings.Contains(listing, `"anomaly":true`) {
		t.Fatalf("launches: %d %s", code, listing)
	}

	places := map[string]string{
		"logs of replica a": a.logText(), "logs of replica b": b.logText(),
		"metrics of replica a": scrapeMetrics(t, http.DefaultClient, a.url), "metrics of replica b": scrapeMetrics(t, http.DefaultClient, b.url),
		"redis": dumpRedis(t, rdb), "admin launches": listing,
	}
	if strings.Count(places["logs of replica a"]+places["logs of replica b"], "\n") < 20 {
		t.Fatal("too few log lines: the logs were not captured")
	}
	for where, text := range places {
		for name, v := range raw {
			for _, f := range forms(v) {
				if len(f) >= 8 && strings.Contains(text, f) {
					t.Errorf("%s holds the %s (%.16s...)", where, name, f)
				}
			}
		}
	}
}
