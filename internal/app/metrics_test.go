package app

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/metrics"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/testkit"
)

// A real Prometheus scrapes a real verifier: after a known mix of passed
// and failed attestations, challenges and releases, it reports exactly
// those counts under SPEC's metric names, the active policy id, and no
// label value that is a per-guest value. Every query of the Grafana
// dashboard runs on it.
func TestPrometheusScrapesTheVerifier(t *testing.T) {
	t.Parallel()
	s := startServer(t, refYAML(""), func(c *config.Config) {
		c.Resources = resourceDir(t, map[string]string{"db-password": dbPassword})
	})
	u, _ := url.Parse(s.url)
	prom := testkit.StartPrometheus(t, u.Host)
	ctx := context.Background()
	value := func(q string) (float64, bool) {
		r, err := prom.Query(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		if len(r) != 1 {
			return 0, false
		}
		return r[0].Value, true
	}
	// One scrape before the events, so that rates have two samples.
	waitFor(t, func() bool { v, ok := value(`up{job="trustgate"}`); return ok && v == 1 })

	g := newGuest(t, sim.Options{})
	challenges := 0
	challenge := func() []byte { challenges++; return s.challenge(t) }
	var tok string
	for range 3 {
		resp, err := s.c.Attest(ctx, g.request(challenge(), false))
		if err != nil {
			t.Fatal(err)
		}
		tok = resp.Token
	}
	replayed := g.request(challenge(), false)
	s.c.Attest(ctx, replayed)
	if _, err := s.c.Attest(ctx, replayed); reasonOf(err) != "nonce_replayed" {
		t.Fatal(err)
	}
	m := [48]byte(bytes.Repeat([]byte{0x11}, 48))
	rogue := newGuest(t, sim.Options{Measurement: &m})
	if _, err := s.c.Attest(ctx, rogue.request(challenge(), false)); reasonOf(err) != "measurement_mismatch" {
		t.Fatal(err)
	}
	if _, err := s.c.Release(ctx, tok, []string{"db-password"}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.c.Release(ctx, tok, []string{"db-password"}); reasonOf(err) != "token_replayed" {
		t.Fatal(err)
	}

	deadline := time.Now().Add(30 * time.Second)
	for {
		if v, ok := value(`sum(trustgate_attestations_total)`); ok && v == 6 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("Prometheus did not see the 6 attestations in 30 s")
		}
		time.Sleep(200 * time.Millisecond)
	}
	var h v1.Health
	getJSON(t, s.url+v1.PathHealthz, http.StatusOK, &h)
	want := map[string]float64{
		`trustgate_attestations_total{tee="sev-snp",result="pass",reason="none"}`:                 4,
		`trustgate_attestations_total{tee="sev-snp",result="fail",reason="nonce_replayed"}`:       1,
		`trustgate_attestations_total{tee="sev-snp",result="fail",reason="measurement_mismatch"}`: 1,
		`trustgate_attestations_total{tee="sev-snp",result="fail",reason="signature_invalid"}`:    0, // pre-initialised
		`trustgate_attestation_duration_seconds_count{tee="sev-snp"}`:                             6,
		`trustgate_challenges_issued_total`:                                                       float64(challenges),
		`trustgate_releases_total{result="pass",reason="none"}`:                                   1,
		`trustgate_releases_total{result="fail",reason="token_replayed"}`:                         1,
		`trustgate_cert_cache_lookups_total{result="hit"}`:                                        0, // evidence carried its VCEK
		fmt.Sprintf(`trustgate_policy_info{policy_id=%q}`, h.AppraisalPolicyID):                   1,
	}
	for q, w := range want {
		if v, ok := value(q); !ok || v != w {
			t.Errorf("%s = %v (present %v), want %v", q, v, ok, w)
		}
	}

	// No label value is a measurement, chip id, nonce or token.
	series, err := prom.Query(ctx, `{__name__=~"trustgate_.+"}`)
	if err != nil {
		t.Fatal(err)
	}
	forbidden := []string{hex.EncodeToString(sim.DefaultMeasurement[:8]), hex.EncodeToString(m[:8]), "cdcdcdcd", tok[:16]}
	for _, sm := range series {
		for k, v := range sm.Labels {
			for _, f := range forbidden {
				if strings.Contains(v, f) {
					t.Errorf("label %s=%q carries a per-guest value", k, v)
				}
			}
		}
	}

	// Every dashboard query is valid PromQL over these metrics, and the
	// attestation, launch, reload and KDS panels have data.
	b, err := os.ReadFile(filepath.Join("..", "..", "deploy", "grafana", "trustgate.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		Templating struct {
			List []struct {
				Name       string `json:"name"`
				Definition string `json:"definition"`
				AllValue   string `json:"allValue"`
			} `json:"list"`
		} `json:"templating"`
		Panels []struct {
			Title   string `json:"title"`
			Targets []struct {
				Expr string `json:"expr"`
			} `json:"targets"`
		} `json:"panels"`
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	if len(dash.Panels) == 0 {
		t.Fatal("the dashboard has no panels")
	}
	// The tee variable lists the tee label's values (every TEE and unknown:
	// the series are there before any attestation), and every attestation
	// panel filters on it; each query runs with All and with each TEE.
	teeVar := false
	for _, v := range dash.Templating.List {
		if v.Name == "tee" && v.Definition == "label_values(trustgate_attestations_total, tee)" && v.AllValue == ".*" {
			teeVar = true
		}
	}
	if !teeVar {
		t.Error("the dashboard has no tee variable over trustgate_attestations_total's tee label")
	}
	r, err := prom.Query(ctx, "group by (tee) (trustgate_attestations_total)")
	if err != nil || len(r) != len(metrics.TEEs)+1 {
		t.Errorf("tee values: %v, %v; want %v and unknown", r, err, metrics.TEEs)
	}
	if r, err := prom.Query(ctx, `group by (tee) (trustgate_attestations_total{tee="nitro"})`); err != nil || len(r) != 1 {
		t.Errorf("tee nitro: %v, %v; want the series before any Nitro attestation", r, err)
	}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			if strings.Contains(tg.Expr, "trustgate_attestation") && !strings.Contains(tg.Expr, `tee=~"$tee"`) {
				t.Errorf("panel %q: %s does not filter on the tee variable", p.Title, tg.Expr)
			}
			for _, tee := range []string{".*", "sev-snp", "tdx"} {
				q := strings.ReplaceAll(strings.ReplaceAll(tg.Expr, "$__rate_interval", "1m"), "$tee", tee)
				r, err := prom.Query(ctx, q)
				if err != nil {
					t.Errorf("panel %q: %v", p.Title, err)
					continue
				}
				if tee != "tdx" && (strings.Contains(q, "trustgate_attestations_total") || strings.Contains(q, "trustgate_launch_") ||
					strings.Contains(q, "trustgate_config_reload_failures_total") || strings.Contains(q, "trustgate_kds_held_back_seconds") ||
					strings.Contains(q, "trustgate_store_up")) && len(r) == 0 {
					t.Errorf("panel %q: no data for %s", p.Title, q)
				}
			}
		}
	}
}
