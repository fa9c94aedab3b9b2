package app

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/admin"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/launch"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/testkit"
)

// launchSeq is the trustgate.launch_seq of a token's sev-snp submodule, 0
// when absent.
func launchSeq(t *testing.T, tok string) uint64 {
	t.Helper()
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a JWS: %d parts", len(parts))
	}
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var ear struct {
		Submods map[string]struct {
			Seq uint64 `json:"trustgate.launch_seq"`
		} `json:"submods"`
	}
	if err := json.Unmarshal(b, &ear); err != nil {
		t.Fatal(err)
	}
	return ear.Submods[attest.TEESEVSNP].Seq
}

func (s *server) attestSeq(t *testing.T, g *guest) uint64 {
	t.Helper()
	resp, err := s.c.Attest(context.Background(), g.request(s.challenge(t), false))
	if err != nil {
		t.Fatal(err)
	}
	return launchSeq(t, resp.Token)
}

// Two replicas sharing Redis and a launch key number the attestations of
// one launch together (trustgate.launch_seq 1, 2, 3, ...); a refused
// attestation does not advance it; the same launch from another chip is
// counted in trustgate_launch_anomalies_total and flagged in GET
// /admin/v1/launches, which shows pseudonym prefixes that the launch key
// (as `trustgate fleet lookup` uses it) reproduces, never the REPORT_ID.
func TestLaunchSequencesAcrossReplicas(t *testing.T) {
	t.Parallel()
	rdb := testkit.StartRedis(t)
	dir := t.TempDir()
	nonceKey, tokenKey, launchKey := filepath.Join(dir, "nonce.key"), filepath.Join(dir, "token.pem"), filepath.Join(dir, "launch.key")
	os.WriteFile(nonceKey, []byte(strings.Repeat("ab", 32)), 0o600)
	writeTokenKey(t, tokenKey)
	shared := func(c *config.Config) {
		c.Redis, c.NonceKeyFile, c.TokenKeyFile, c.LaunchKeyFile = "redis://"+rdb.Options().Addr, nonceKey, tokenKey, launchKey
	}
	a := startServer(t, refYAML(""), both(shared, withAdmin(t)))
	b := startServer(t, refYAML(""), shared)
	if !strings.Contains(a.logText(), "launch_key_file did not exist") || strings.Contains(b.logText(), "launch_key_file did not exist") {
		t.Fatal("the first replica should create the launch key, the second read it")
	}
	adminURL := serveAdmin(t, a)

	rid := [32]byte{0x1d, 0x2e}
	g := newGuest(t, sim.Options{ReportID: &rid})
	if got := []uint64{a.attestSeq(t, g), b.attestSeq(t, g), a.attestSeq(t, g)}; got[0] != 1 || got[1] != 2 || got[2] != 3 {
		t.Fatalf("sequence %v, want [1 2 3]", got)
	}
	// Refused: a replayed nonce, a report bound to another nonce.
	req := g.request(a.challenge(t), false)
	if _, err := a.c.Attest(context.Background(), req); err != nil {
		t.Fatal(err)
	}
	if _, err := b.c.Attest(context.Background(), req); reasonOf(err) != "nonce_replayed" {
		t.Fatalf("replay: %v", err)
	}
	bad := g.request(a.challenge(t), false)
	bad.Nonce = a.challenge(t)
	if _, err := a.c.Attest(context.Background(), bad); reasonOf(err) != "report_data_mismatch" {
		t.Fatalf("mismatch: %v", err)
	}
	if seq := b.attestSeq(t, g); seq != 5 {
		t.Fatalf("after refusals: seq %d, want 5", seq)
	}
	// Another launch starts at 1; the same launch on another chip goes on
	// at 6 and is an anomaly.
	if seq := a.attestSeq(t, newGuest(t, sim.Options{})); seq != 1 {
		t.Fatalf("other launch: seq %d", seq)
	}
	chip := [64]byte{0xc1}
	if seq := b.attestSeq(t, newGuest(t, sim.Options{ReportID: &rid, ChipID: &chip})); seq != 6 {
		t.Fatalf("clone: seq %d, want 6", seq)
	}
	if m := scrapeMetrics(t, http.DefaultClient, b.url); !strings.Contains(m, `trustgate_launch_anomalies_total{kind="launch_on_new_chip"} 1`) {
		t.Fatal("the clone was not counted")
	}
	if m := scrapeMetrics(t, http.DefaultClient, a.url); !strings.Contains(m, `trustgate_launch_anomalies_total{kind="launch_on_new_chip"} 0`) {
		t.Fatal("replica a counted an anomaly it did not see")
	}

	key, err := launch.ReadKey(launchKey)
	if err != nil {
		t.Fatal(err)
	}
	k, _ := launch.NewKeyer(key)
	p := k.Launch(attest.TEESEVSNP, rid[:])
	code, body := adminDo(t, "GET", adminURL+admin.PathLaunches, "")
	var ls admin.Launches
	if err := json.Unmarshal([]byte(body), &ls); err != nil || code != 200 || len(ls.Launches) != 2 {
		t.Fatalf("%d %s", code, body)
	}
	var rec *admin.Launch
	for i := range ls.Launches {
		if ls.Launches[i].Launch == p.Prefix() {
			rec = &ls.Launches[i]
		}
	}
	if rec == nil || rec.Seq != 6 || !rec.Anomaly || rec.Chip != k.Chip(attest.TEESEVSNP, sim.DefaultChipID[:]).Prefix() {
		t.Fatalf("record of the launch: %+v in %s", rec, body)
	}
	code, body = adminDo(t, "GET", adminURL+admin.PathLaunches+"?launch="+p.String(), "")
	if code != 200 || !strings.Contains(body, `"seq":6`) {
		t.Fatalf("lookup: %d %s", code, body)
	}
}

// Without Redis the records are this replica's, in memory, and the key is
// generated with a warning.
func TestLaunchSequenceInMemory(t *testing.T) {
	t.Parallel()
	s := startServer(t, refYAML(""), nil)
	if !strings.Contains(s.logText(), "no launch_key_file") {
		t.Fatal("no warning about the generated launch key")
	}
	g := newGuest(t, sim.Options{})
	if got := []uint64{s.attestSeq(t, g), s.attestSeq(t, g)}; got[0] != 1 || got[1] != 2 {
		t.Fatalf("sequence %v", got)
	}
}

// SPEC "The store's cost": 32 concurrent attestations of one launch at
// two replicas sharing a real Redis are all affirmed, each with its own
// launch_seq (1 to 32), none refused store_unavailable for the race. With
// the default policy (it never reads input.launch) no launch record is
// read apart from the one script per attestation (no HGETALL), which ran
// its SET once per nonce; with a policy that reads input.launch, the
// attestations that lost a race are judged again with the new record.
func TestConcurrentAttestationsOfOneLaunch(t *testing.T) {
	t.Parallel()
	const readsLaunch = "package trustgate\n\nreason_codes := {\"policy_clone\"}\n\ndecision := {\"allow\": true, \"reasons\": [], \"label\": sprintf(\"seq-%d\", [input.launch.seq])} if not input.launch.new_chip\n\ndecision := {\"allow\": false, \"reasons\": [\"policy_clone\"]} if input.launch.new_chip\n"
	for _, tc := range []struct {
		name   string
		policy string
	}{{"default policy", ""}, {"policy reading input.launch", readsLaunch}} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			srv := testkit.StartRedisServer(t)
			dir := t.TempDir()
			nonceKey, tokenKey, launchKey := filepath.Join(dir, "nonce.key"), filepath.Join(dir, "token.pem"), filepath.Join(dir, "launch.key")
			os.WriteFile(nonceKey, []byte(strings.Repeat("cd", 32)), 0o600)
			writeTokenKey(t, tokenKey)
			policyFile := ""
			if tc.policy != "" {
				policyFile = filepath.Join(dir, "policy.rego")
				os.WriteFile(policyFile, []byte(tc.policy), 0o600)
			}
			shared := func(c *config.Config) {
				c.Redis, c.NonceKeyFile, c.TokenKeyFile, c.LaunchKeyFile, c.Policy = "redis://"+srv.Addr, nonceKey, tokenKey, launchKey, policyFile
				// A store call that a busy machine delays past the
				// default second is a 503, which this test is not about.
				c.StoreTimeout = 10 * time.Second
			}
			a := startServer(t, refYAML(""), shared)
			b := startServer(t, refYAML(""), shared)
			rid := [32]byte{0x32}
			g := newGuest(t, sim.Options{ReportID: &rid})
			const n = 32
			reqs := make([]v1.AttestRequest, n)
			for i := range reqs {
				reqs[i] = g.request([]*server{a, b}[i%2].challenge(t), false)
			}
			ctx := context.Background()
			if err := srv.Client.ConfigResetStat(ctx).Err(); err != nil {
				t.Fatal(err)
			}
			seqs := make([]uint64, n)
			errs := make([]error, n)
			var wg sync.WaitGroup
			for i := range reqs {
				wg.Go(func() {
					resp, err := []*server{a, b}[i%2].c.Attest(ctx, reqs[i])
					if errs[i] = err; err == nil {
						seqs[i] = launchSeq(t, resp.Token)
					}
				})
			}
			wg.Wait()
			seen := map[uint64]bool{}
			for i, err := range errs {
				if err != nil {
					t.Fatalf("attestation %d of %d: %v (want all affirmed)\n%s\n%s", i, n, err, a.logText(), b.logText())
				}
				seen[seqs[i]] = true
			}
			for s := uint64(1); s <= n; s++ {
				if !seen[s] {
					t.Fatalf("launch_seq %d missing: got %v, want 1..%d each once", s, seqs, n)
				}
			}
			calls := commandCalls(t, srv)
			if calls["set"] != n {
				t.Errorf("%d single-use writes for %d attestations, want one each", calls["set"], n)
			}
			if tc.policy == "" && calls["hgetall"] != 0 {
				t.Errorf("%d launch record reads (HGETALL) with a policy that never reads input.launch, want none", calls["hgetall"])
			}
		})
	}
}
