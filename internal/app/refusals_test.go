package app

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/testkit"
)

// scrapeMetrics returns the exposition text of the server's /metrics.
func scrapeMetrics(t *testing.T, c *http.Client, base string) string {
	t.Helper()
	resp, err := c.Get(base + v1.PathMetrics)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return string(b)
}

// post sends body to path with the given Authorization (none if "") and
// returns the status and the reason of the answer.
func post(t *testing.T, c *http.Client, url, auth string, body []byte) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var e v1.Error
	json.NewDecoder(resp.Body).Decode(&e)
	return resp.StatusCode, e.Reason
}

// Every request refused before the verifier, and every refused release,
// is counted once with its reason, by TEE for attestations (a TEE the
// client made up is "unknown"), and logged once: bad JSON, unknown
// fields, 413, a missing or made-up tee, a nonce of the wrong length, no
// or a bad token, and (with client certificates required) 401 on every
// gated path.
func TestEveryRefusalIsCountedWithItsReason(t *testing.T) {
	t.Parallel()
	s := startServer(t, refYAML(""), func(c *config.Config) {
		c.Resources = resourceDir(t, map[string]string{"db-password": dbPassword})
	})
	hc := &http.Client{}
	b64 := func(b []byte) string { return base64.StdEncoding.EncodeToString(b) }
	nonce64 := b64(make([]byte, 64))
	tooBig := bytes.Repeat([]byte(" "), v1.MaxBodySize+1)
	garbageTEE := `tdx"}evil`
	cases := []struct {
		name, path, auth, body string
		raw                    []byte
		status                 int
		reason                 string
	}{
		{"attest: bad JSON", v1.PathAttest, "", `{"nonce":`, nil, 400, "malformed_evidence"},
		{"attest: unknown field", v1.PathAttest, "", `{"x":1}`, nil, 400, "malformed_evidence"},
		{"attest: too large", v1.PathAttest, "", "", tooBig, 413, "malformed_evidence"},
		{"attest: no tee", v1.PathAttest, "", `{"nonce":"` + nonce64 + `","evidence":{"report":""}}`, nil, 400, "malformed_evidence"},
		{"attest: made-up tee", v1.PathAttest, "", `{"nonce":"` + nonce64 + `","tee":` + jsonString(garbageTEE) + `,"evidence":{"report":""}}`, nil, 400, "malformed_evidence"},
		{"attest: short nonce", v1.PathAttest, "", `{"nonce":"AAAA","tee":"sev-snp","evidence":{"report":""}}`, nil, 400, "malformed_evidence"},
		{"attest: foreign nonce", v1.PathAttest, "", `{"nonce":"` + nonce64 + `","tee":"sev-snp","evidence":{"report":""}}`, nil, 403, "nonce_invalid"},
		{"verify: short body", v1.PathVerify, "", "short", nil, 400, "malformed_evidence"},
		{"verify: too large", v1.PathVerify, "", "", tooBig, 413, "malformed_evidence"},
		{"release: no token", v1.PathRelease, "", `{"resources":["db-password"]}`, nil, 401, "token_invalid"},
		{"release: bad token", v1.PathRelease, "Bearer x.y.z", `{"resources":["db-password"]}`, nil, 401, "token_invalid"},
		{"release: bad JSON", v1.PathRelease, "Bearer x.y.z", `{"resources":`, nil, 400, "malformed_evidence"},
		{"release: unknown field", v1.PathRelease, "Bearer x.y.z", `{"names":[]}`, nil, 400, "malformed_evidence"},
		{"release: too large", v1.PathRelease, "Bearer x.y.z", "", tooBig, 413, "malformed_evidence"},
		{"challenge: too large", v1.PathChallenge, "", "", tooBig, 413, "malformed_evidence"},
	}
	for _, tc := range cases {
		body := tc.raw
		if body == nil {
			body = []byte(tc.body)
		}
		if status, reason := post(t, hc, s.url+tc.path, tc.auth, body); status != tc.status || reason != tc.reason {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, reason, tc.status, tc.reason)
		}
	}
	out := scrapeMetrics(t, hc, s.url)
	for _, want := range []string{
		`trustgate_attestations_total{reason="malformed_evidence",result="fail",tee="unknown"} 5`,
		`trustgate_attestations_total{reason="malformed_evidence",result="fail",tee="sev-snp"} 3`,
		`trustgate_attestations_total{reason="nonce_invalid",result="fail",tee="sev-snp"} 1`,
		`trustgate_attestation_duration_seconds_count{tee="unknown"} 5`,
		`trustgate_attestation_duration_seconds_count{tee="sev-snp"} 4`,
		`trustgate_releases_total{reason="token_invalid",result="fail"} 2`,
		`trustgate_releases_total{reason="malformed_evidence",result="fail"} 3`,
		`trustgate_releases_total{reason="none",result="pass"} 0`,
		`trustgate_challenges_refused_total{reason="malformed_evidence"} 1`,
		`trustgate_challenges_issued_total 0`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	if strings.Contains(out, "evil") {
		t.Error("a client-chosen tee became a label value")
	}
	// One log line per refusal, each with its reason; no client string.
	var fails int
	for _, line := range strings.Split(strings.TrimSpace(s.logText()), "\n") {
		var rec map[string]any
		if err := json.Unmarshal([]byte(line), &rec); err != nil {
			t.Fatalf("not a JSON log line: %q", line)
		}
		if rec["result"] == "fail" {
			fails++
			if rec["reason"] == nil || rec["reason"] == "" {
				t.Errorf("a refusal logged without its reason: %s", line)
			}
		}
	}
	if fails != len(cases) {
		t.Errorf("%d refusals logged, want %d (one per request):\n%s", fails, len(cases), s.logText())
	}
	if strings.Contains(s.logText(), "evil") {
		t.Error("a client-chosen tee reached the log")
	}

	// Without a client certificate, every gated path is refused with 401
	// unauthorized_client, and counted so.
	p := testkit.NewPKI(t)
	ts := startServer(t, refYAML(""), func(c *config.Config) {
		c.TLSCert, c.TLSKey, c.ClientCA = p.ServerCert, p.ServerKey, p.CAFile
		c.Resources = resourceDir(t, map[string]string{"db-password": dbPassword})
	})
	httpsURL := strings.Replace(ts.url, "http://", "https://", 1)
	anonymous := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: p.Pool}}}
	for _, path := range []string{v1.PathChallenge, v1.PathAttest, v1.PathRelease, v1.PathVerify} {
		if status, reason := post(t, anonymous, httpsURL+path, "", []byte("{}")); status != 401 || reason != "unauthorized_client" {
			t.Errorf("%s without a certificate: %d %s", path, status, reason)
		}
	}
	out = scrapeMetrics(t, anonymous, httpsURL)
	for _, want := range []string{
		`trustgate_attestations_total{reason="unauthorized_client",result="fail",tee="unknown"} 1`,
		`trustgate_attestations_total{reason="unauthorized_client",result="fail",tee="sev-snp"} 1`,
		`trustgate_releases_total{reason="unauthorized_client",result="fail"} 1`,
		`trustgate_challenges_refused_total{reason="unauthorized_client"} 1`,
	} {
		if !strings.Contains(out, want+"\n") {
			t.Errorf("/metrics lacks %s", want)
		}
	}
}

func jsonString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}
