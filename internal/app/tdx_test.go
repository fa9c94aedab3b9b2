package app

import (
	"context"
	"encoding/json"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/pcs"
	"github.com/trustgate/trustgate/internal/testkit"
)

// /v1/attest takes tee "tdx" with evidence {"quote": b64}: a real quote
// reaches the TDX verifier, which — offline, with no collateral cached —
// answers 503 collateral_unavailable; the attempt is counted and logged under
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

// serve fetches TDX collateral from pcs_url: a real quote with Intel's
// 2025 collateral (fetched from a PCS that serves it as Intel does)
// verifies — the attempt gets as far as the REPORT_DATA comparison, which a
// recorded quote cannot pass — and when PCS fails it is 503
// collateral_unavailable.
func TestAttestTDXQuoteWithPCS(t *testing.T) {
	t.Parallel()
	p := testkit.NewPCS(t)
	if err := p.ServeIntel2025(filepath.Join("..", "..", "testdata", "tdx")); err != nil {
		t.Fatal(err)
	}
	s := startServer(t, refYAML(""), func(c *config.Config) {
		c.Offline, c.PCSURL, c.PCSRootCRLURL = false, p.URL, p.URL+testkit.RootCRLPath
	})
	s.clock.Add(time.Date(2025, 11, 20, 0, 0, 0, 0, time.UTC).Sub(s.clock.Now()))
	quote, err := os.ReadFile(filepath.Join("..", "..", "testdata", "tdx", "teekit-phala-quote.dat"))
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{}
	attempt := func() (int, string) {
		ch, err := s.c.Challenge(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(v1.AttestRequest{Nonce: ch.Nonce, TEE: v1.TEETDX, Evidence: v1.Evidence{Quote: quote}})
		return post(t, hc, s.url+v1.PathAttest, "", body)
	}
	if status, reason := attempt(); status != 403 || reason != "report_data_mismatch" {
		t.Fatalf("with PCS: %d %s, want 403 report_data_mismatch", status, reason)
	}
	// A month later the collateral is past its nextUpdate and PCS fails.
	for _, k := range []string{"tcb", "qe", "pckcrl", "rootcrl"} {
		p.SetFault(k, testkit.Fault{Status: 500})
	}
	s.clock.Add(30 * 24 * time.Hour)
	if status, reason := attempt(); status != 503 || reason != "collateral_unavailable" {
		t.Fatalf("PCS down, collateral expired: %d %s, want 503 collateral_unavailable", status, reason)
	}
}

// config's PCS defaults are Intel's (pcs' documented defaults).
func TestConfigPCSDefaults(t *testing.T) {
	t.Parallel()
	d := config.Default()
	if d.PCSURL != pcs.DefaultURL || d.PCSRootCRLURL != pcs.DefaultRootCRLURL {
		t.Errorf("config %q %q, pcs %q %q", d.PCSURL, d.PCSRootCRLURL, pcs.DefaultURL, pcs.DefaultRootCRLURL)
	}
	d.PCSURL = "api.trustedservices.intel.com"
	if err := d.Validate(); err == nil || !strings.Contains(err.Error(), "pcs_url") {
		t.Errorf("pcs_url without a scheme: %v", err)
	}
}
