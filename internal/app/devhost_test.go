package app

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

// A dev-simulator verifier answers loopback Host names only (issue 21,
// item 12): a DNS-rebinding name pointed at 127.0.0.1 gets 421.
func TestDevSimulatorLoopbackHostOnly(t *testing.T) {
	t.Parallel()
	h := loopbackHostOnly(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) }))
	for host, want := range map[string]int{
		"127.0.0.1:8080": http.StatusNoContent, "localhost:8080": http.StatusNoContent, "LOCALHOST.": http.StatusNoContent,
		"[::1]:8080": http.StatusNoContent, "127.1.2.3": http.StatusNoContent, "[::ffff:127.0.0.1]:1": http.StatusNoContent, "0.0.0.0:8080": http.StatusNoContent,
		"rebind.example:8080": http.StatusMisdirectedRequest, "attacker.example": http.StatusMisdirectedRequest,
		"10.0.0.1:8080": http.StatusMisdirectedRequest, "localhost.attacker.example": http.StatusMisdirectedRequest,
		"127.0.0.1.nip.io": http.StatusMisdirectedRequest, "": http.StatusMisdirectedRequest,
	} {
		r := httptest.NewRequest(http.MethodGet, "/v1/challenge", nil)
		r.Host = host
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if w.Code != want {
			t.Errorf("Host %q: %d, want %d", host, w.Code, want)
		}
	}
}
