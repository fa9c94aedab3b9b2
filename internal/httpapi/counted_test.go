package httpapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/verifier"
)

type observation struct {
	op, tee string
	reason  attest.Reason
}

type recorder struct {
	mu  sync.Mutex
	obs []observation
}

func (r *recorder) add(o observation) { r.mu.Lock(); r.obs = append(r.obs, o); r.mu.Unlock() }
func (r *recorder) Attested(tee string, reason attest.Reason, _ time.Duration) {
	r.add(observation{"attest", tee, reason})
}
func (r *recorder) Released(reason attest.Reason)   { r.add(observation{"release", "", reason}) }
func (r *recorder) Challenged(reason attest.Reason) { r.add(observation{"challenge", "", reason}) }

type fakeDomain struct{}

func (fakeDomain) Attest(_ context.Context, in verifier.AttestInput) (string, error) {
	switch in.TEE {
	case "panic":
		panic("boom")
	case "sev-snp":
		return "tok", nil
	}
	return "", attest.Errorf(attest.ReasonMalformedEvidence, "unsupported tee")
}
func (fakeDomain) VerifyPlain(context.Context, []byte) error {
	return attest.Errorf(attest.ReasonSignatureInvalid, "bad")
}
func (fakeDomain) Release(context.Context, string, []string) (string, error) {
	return "", attest.Errorf(attest.ReasonTokenReplayed, "used")
}
func (fakeDomain) Issue() (attest.Nonce, time.Time) { return attest.Nonce{}, time.Now() }
func (fakeDomain) PolicyID() string                 { return "sha256:x" }
func (fakeDomain) Ready() error                     { return nil }

// Every request to an attempt endpoint is observed exactly once, with the
// reason of whoever refused it (a panic is internal_error), and logged
// once; other endpoints are not observed.
func TestEachAttemptObservedOnce(t *testing.T) {
	t.Parallel()
	nonce := `"` + strings.Repeat("A", 86) + `=="`
	cases := []struct {
		name, path, body string
		tls              bool
		status           int
		want             observation // op "" = not observed
	}{
		{"attest pass", v1.PathAttest, `{"nonce":` + nonce + `,"tee":"sev-snp","evidence":{}}`, true, 200, observation{"attest", "sev-snp", ""}},
		{"attest bad JSON", v1.PathAttest, `{`, true, 400, observation{"attest", "", attest.ReasonMalformedEvidence}},
		{"attest made-up tee", v1.PathAttest, `{"nonce":` + nonce + `,"tee":"x{y","evidence":{}}`, true, 400, observation{"attest", "x{y", attest.ReasonMalformedEvidence}},
		{"attest panics", v1.PathAttest, `{"nonce":` + nonce + `,"tee":"panic","evidence":{}}`, true, 500, observation{"attest", "panic", attest.ReasonInternalError}},
		{"attest no client cert", v1.PathAttest, `{}`, false, 401, observation{"attest", "", attest.ReasonUnauthorizedClient}},
		{"verify", v1.PathVerify, `x`, true, 403, observation{"attest", "sev-snp", attest.ReasonSignatureInvalid}},
		{"release", v1.PathRelease, `{"resources":[]}`, true, 401, observation{"release", "", attest.ReasonTokenInvalid}},
		{"challenge", v1.PathChallenge, ``, true, 200, observation{"challenge", "", ""}},
		{"challenge no client cert", v1.PathChallenge, ``, false, 401, observation{"challenge", "", attest.ReasonUnauthorizedClient}},
		{"healthz", v1.PathHealthz, ``, false, 200, observation{}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			rec := &recorder{}
			var logs bytes.Buffer
			d := fakeDomain{}
			h := New(Options{Attester: d, Releaser: d, Challenger: d, Health: d, Observer: rec,
				JWKS: func() jose.JSONWebKeySet { return jose.JSONWebKeySet{} }, RequireClientCert: true,
				Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
			method := http.MethodPost
			if tc.path == v1.PathHealthz {
				method = http.MethodGet
			}
			req := httptest.NewRequest(method, tc.path, strings.NewReader(tc.body))
			if tc.tls {
				req.TLS = &tls.ConnectionState{VerifiedChains: [][]*x509.Certificate{{}}}
			}
			w := httptest.NewRecorder()
			h.ServeHTTP(w, req)
			if w.Code != tc.status {
				t.Errorf("status %d, want %d: %s", w.Code, tc.status, w.Body)
			}
			var want []observation
			if tc.want.op != "" {
				want = []observation{tc.want}
			}
			if len(rec.obs) != len(want) || (len(want) == 1 && rec.obs[0] != want[0]) {
				t.Errorf("observed %+v, want %+v", rec.obs, want)
			}
			lines := strings.Count(logs.String(), "\n")
			wantLines := len(want)
			if tc.want.op == "challenge" && tc.want.reason == "" {
				wantLines = 0 // an issued nonce is counted, not logged
			}
			if tc.want.reason == attest.ReasonInternalError {
				wantLines++ // and the recoverer's line
			}
			if lines != wantLines || strings.Contains(logs.String(), "x{y") {
				t.Errorf("%d log lines, want %d:\n%s", lines, wantLines, logs.String())
			}
		})
	}
}
