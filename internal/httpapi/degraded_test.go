package httpapi

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"

	jose "github.com/go-jose/go-jose/v4"

	v1 "github.com/trustgate/trustgate/api/v1"
)

type readiness struct{ err error }

func (readiness) PolicyID() string { return "sha256:p" }
func (r readiness) Ready() error   { return r.err }

// A degraded verifier (a refused reload; the last good set serves) stays
// in service: /readyz 200, status "degraded" and why. Anything else that
// is not ready is 503.
func TestReadyzDegraded(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name   string
		err    error
		code   int
		status string
	}{
		{"ready", nil, http.StatusOK, "ok"},
		{"degraded", &Degraded{Err: errors.New("reference values file r.yaml: signature_invalid")}, http.StatusOK, "degraded"},
		{"degraded, wrapped", errors.Join(&Degraded{Err: errors.New("x")}), http.StatusOK, "degraded"},
		{"not ready", errors.New("redis does not answer"), http.StatusServiceUnavailable, "unavailable"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			h := New(Options{Attester: &clientRecorder{}, JWKS: func() jose.JSONWebKeySet { return jose.JSONWebKeySet{} }, Health: readiness{tc.err}})
			w := httptest.NewRecorder()
			h.ServeHTTP(w, httptest.NewRequest(http.MethodGet, v1.PathReadyz, nil))
			var st v1.Health
			json.Unmarshal(w.Body.Bytes(), &st)
			if w.Code != tc.code || st.Status != tc.status || (tc.err != nil && st.Error == "") {
				t.Fatalf("%d %+v", w.Code, st)
			}
			if tc.status == "degraded" && st.Error == (&Degraded{Err: errors.New("x")}).Error() {
				t.Fatal("the body repeats the degraded prefix")
			}
		})
	}
}
