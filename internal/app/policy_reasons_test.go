package app

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/sim"
)

// A hostile or careless policy reason: long, upper case, spaces, a
// newline, quotes and braces that would break a label or a log line.
const hostileRego = `"policy_AKIA SECRET Do-Not-Log \"}{\n` + "xxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxxx" + `"`

// leakMarkers are fragments of the hostile reason and of the secret-looking
// string in broken files: none may appear in a response, a log line,
// /readyz or /metrics.
var leakMarkers = []string{"AKIA", "Do-Not-Log", "secret_4f9c", "SECRET_4F9C"}

func denyPolicy(reasons string) string {
	return "package trustgate\n\nreason_codes := {\"policy_region\", \"policy_x\"}\n\ndecision := {\"allow\": false, \"reasons\": [" + reasons + "]}\n"
}

func rawGet(t *testing.T, url string) (int, string) {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, string(b)
}

func assertNoLeak(t *testing.T, where, text string) {
	t.Helper()
	for _, m := range leakMarkers {
		if strings.Contains(text, m) {
			t.Errorf("%s quotes %q:\n%s", where, m, text)
		}
	}
}

// A policy's reason codes reach responses, logs and metric labels only in
// the form policy_[a-z0-9_]{1,40} (anything else is policy_denied), and a
// policy or reference-values file that does not load is reported by
// /readyz and the reload log by file, kind and line, never by a quote.
func TestPolicyReasonsAndFileErrorsQuoteNothing(t *testing.T) {
	t.Parallel()
	policyPath := filepath.Join(t.TempDir(), "custom.rego")
	if err := os.WriteFile(policyPath, []byte(denyPolicy(hostileRego)), 0o600); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, refYAML(""), func(c *config.Config) { c.Policy = policyPath })
	ctx := context.Background()
	g := newGuest(t, sim.Options{})

	_, err := s.c.Attest(ctx, g.request(s.challenge(t), false))
	if reasonOf(err) != "policy_denied" {
		t.Fatalf("hostile reason: %v, want policy_denied", err)
	}
	assertNoLeak(t, "the response", err.Error())

	// A well-formed code of the policy's own is kept, even after a
	// hostile one.
	var before v1.Health
	getJSON(t, s.url+v1.PathHealthz, http.StatusOK, &before)
	writeFile(t, policyPath, denyPolicy(hostileRego+`, "policy_region"`))
	waitFor(t, func() bool {
		var h v1.Health
		getJSON(t, s.url+v1.PathHealthz, http.StatusOK, &h)
		return h.AppraisalPolicyID != before.AppraisalPolicyID
	})
	if _, err := s.c.Attest(ctx, g.request(s.challenge(t), false)); reasonOf(err) != "policy_region" {
		t.Fatalf("own code: %v, want policy_region", err)
	}

	// A policy that does not compile: /readyz stays 200 (the last good
	// policy serves) but says "degraded" and names the file, the kind and
	// the line.
	writeFile(t, policyPath, "package trustgate\n\ndecision := {\"allow\": AKIA_SECRET_4f9c}\n")
	var body string
	waitFor(t, func() bool {
		var code int
		code, body = rawGet(t, s.url+v1.PathReadyz)
		return code == http.StatusOK && strings.Contains(body, `"status":"degraded"`)
	})
	for _, want := range []string{policyPath, "rego_unsafe_var_error", "line 3"} {
		if !strings.Contains(body, want) {
			t.Errorf("/readyz lacks %q: %s", want, body)
		}
	}
	assertNoLeak(t, "/readyz", body)

	// Reference values that do not decode: the same.
	writeFile(t, policyPath, denyPolicy(`"policy_region"`))
	waitFor(t, func() bool {
		code, b := rawGet(t, s.url+v1.PathReadyz)
		return code == http.StatusOK && strings.Contains(b, `"status":"ok"`)
	})
	refPath := filepath.Join(s.dir, "ref.yaml")
	writeFile(t, refPath, refYAML("AKIA_SECRET_4f9c: 1\n"))
	waitFor(t, func() bool {
		var code int
		code, body = rawGet(t, s.url+v1.PathReadyz)
		return code == http.StatusOK && strings.Contains(body, `"status":"degraded"`)
	})
	for _, want := range []string{refPath, "yaml_unknown_field", "line 5"} {
		if !strings.Contains(body, want) {
			t.Errorf("/readyz lacks %q: %s", want, body)
		}
	}
	assertNoLeak(t, "/readyz", body)

	_, metrics := rawGet(t, s.url+v1.PathMetrics)
	for _, want := range []string{
		`trustgate_attestations_total{reason="policy_denied",result="fail",tee="sev-snp"} 1`,
		`trustgate_attestations_total{reason="policy_region",result="fail",tee="sev-snp"} 1`,
		`trustgate_config_reload_failures_total{file="policy",kind="invalid"} 1`,
		`trustgate_config_reload_failures_total{file="reference_values",kind="invalid"} 1`,
	} {
		if !strings.Contains(metrics, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	assertNoLeak(t, "/metrics", metrics)
	logs := s.logText()
	assertNoLeak(t, "the log", logs)
	if !strings.Contains(logs, `"kind":"yaml_unknown_field"`) || !strings.Contains(logs, `"kind":"rego_unsafe_var_error"`) {
		t.Errorf("the reload log does not say what failed:\n%s", logs)
	}
	for _, line := range strings.Split(strings.TrimSpace(logs), "\n") {
		if !json.Valid([]byte(line)) {
			t.Errorf("not a JSON log line: %q", line)
		}
	}
}

// A broken policy file stops the server at start with an error that names
// the file and what is wrong, and quotes none of it.
func TestBrokenPolicyAtStartQuotesNothing(t *testing.T) {
	t.Parallel()
	for name, files := range map[string][2]string{
		"policy":    {"package trustgate\n\ndecision := {\"allow\": AKIA_SECRET_4f9c}\n", refYAML("")},
		"reference": {denyPolicy(`"policy_x"`), refYAML("AKIA_SECRET_4f9c: 1\n")},
	} {
		dir := t.TempDir()
		cfg := config.Default()
		cfg.Listen, cfg.DevSimulator, cfg.Offline, cfg.CertCacheDir = "127.0.0.1:0", true, true, filepath.Join(dir, "certs")
		cfg.Policy, cfg.ReferenceValues = filepath.Join(dir, "p.rego"), filepath.Join(dir, "ref.yaml")
		os.WriteFile(cfg.Policy, []byte(files[0]), 0o600)
		os.WriteFile(cfg.ReferenceValues, []byte(files[1]), 0o600)
		a, err := New(context.Background(), cfg, Deps{Logger: slog.New(slog.DiscardHandler)})
		if err == nil {
			a.Close()
			t.Fatalf("%s: a broken file was accepted", name)
		}
		assertNoLeak(t, name+": the start-up error", err.Error())
		if !strings.Contains(err.Error(), "line") {
			t.Errorf("%s: the start-up error does not say where: %v", name, err)
		}
	}
}

// writeFile replaces path atomically, so the watcher never sees it
// half-written.
func writeFile(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}
