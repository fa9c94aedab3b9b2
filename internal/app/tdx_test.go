package app

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"

	v1 "github.com/trustgate/trustgate/api/v1"
)

// /v1/attest takes tee "tdx" with evidence {"quote": b64}: a real quote
// reaches the TDX verifier, which — with no collateral service yet — answers
// 503 collateral_unavailable; the attempt is counted and logged under
// tee="tdx". SNP parts sent as tdx are malformed_evidence.
func TestAttestTDXQuote(t *testing.T) {
	t.Parallel()
	s := startServer(t, refYAML(""), nil)
	quote, err := os.ReadFile(filepath.Join("..", "..", "testdata", "tdx", "teekit-phala-quote.dat"))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{}
	for _, tc := range []struct {
		ev     v1.Evidence
		status int
		reason string
	}{
		{v1.Evidence{Quote: quote}, 503, "collateral_unavailable"},
		{v1.Evidence{Quote: quote, Report: make([]byte, 1184)}, 400, "malformed_evidence"},
	} {
		ch, err := s.c.Challenge(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(v1.AttestRequest{Nonce: ch.Nonce, TEE: v1.TEETDX, Evidence: tc.ev})
		if status, reason := post(t, hc, s.url+v1.PathAttest, "", body); status != tc.status || reason != tc.reason {
			t.Fatalf("%d %s, want %d %s", status, reason, tc.status, tc.reason)
		}
	}
	m := scrapeMetrics(t, hc, s.url)
	for _, want := range []string{
		`trustgate_attestations_total{reason="collateral_unavailable",result="fail",tee="tdx"} 1`,
		`trustgate_attestations_total{reason="malformed_evidence",result="fail",tee="tdx"} 1`,
		`trustgate_attestations_total{reason="none",result="pass",tee="tdx"} 0`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	if !strings.Contains(s.logText(), `"tee":"tdx","result":"fail","reason":"collateral_unavailable"`) {
		t.Errorf("no log line for the TDX attempt:\n%s", s.logText())
	}
}
