package app

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/token"
)

// A --dev-simulator verifier verifies a simulated TD end to end (PCK chain
// to the simulator's root, QE and quote signatures, the simulator's own
// collateral, TCB status UpToDate), applies the default policy's TDX rules
// and marks the token; each rejection has its exact reason.
func TestAttestSimulatedTDX(t *testing.T) {
	t.Parallel()
	rtmr1 := [48]byte(bytes.Repeat([]byte{0x33}, 48))
	entry := func(extra string) string {
		return "  - tee: tdx\n    value: " + hex.EncodeToString(approved[:]) + "\n    label: td-1\n    rtmr: [\"\", \"" + hex.EncodeToString(rtmr1[:]) + "\"]\n" + extra
	}
	s := startServer(t, refYAML(entry("")), nil)
	// Another verifier that accepts only SWHardeningNeeded.
	strict := startServer(t, refYAML(entry("tdx_tcb_status: [SWHardeningNeeded]\n")), nil)
	ctx := context.Background()
	other := [48]byte(bytes.Repeat([]byte{0x11}, 48))
	hc := &http.Client{}
	for _, tc := range []struct {
		name   string
		s      *server
		o      sim.TDXOptions
		status int
		reason string
	}{
		{"approved TD", s, sim.TDXOptions{MRTD: &approved, RTMR: [4][48]byte{1: rtmr1}}, 200, ""},
		{"approved TD, quote v5", s, sim.TDXOptions{MRTD: &approved, RTMR: [4][48]byte{1: rtmr1}, Version: 5}, 200, ""},
		{"debug TD", s, sim.TDXOptions{MRTD: &approved, RTMR: [4][48]byte{1: rtmr1}, Debug: true}, 403, "debug_enabled"},
		{"unapproved MRTD", s, sim.TDXOptions{MRTD: &other, RTMR: [4][48]byte{1: rtmr1}}, 403, "measurement_mismatch"},
		{"wrong RTMR1", s, sim.TDXOptions{MRTD: &approved, RTMR: [4][48]byte{1: other}}, 403, "measurement_mismatch"},
		{"TCB status not accepted", strict, sim.TDXOptions{MRTD: &approved, RTMR: [4][48]byte{1: rtmr1}}, 403, "policy_tcb_status"},
	} {
		g := newGuest(t, sim.Options{})
		dev, err := sim.NewTDX(tc.o)
		if err != nil {
			t.Fatal(err)
		}
		n := tc.s.challenge(t)
		req := v1.AttestRequest{Nonce: n, TEE: v1.TEETDX, TEEPubKey: g.jwk,
			Evidence: v1.Evidence{Quote: dev.Quote(attest.BindReportData(attest.Nonce(n), g.tp))}}
		body, _ := json.Marshal(req)
		if status, reason := post(t, hc, tc.s.url+v1.PathAttest, "", body); status != tc.status || reason != tc.reason {
			t.Errorf("%s: %d %q, want %d %q", tc.name, status, reason, tc.status, tc.reason)
			continue
		}
		if tc.status != 200 {
			continue
		}
		// The token: tdx submodule, the TDX entry's label, the guest's
		// key, marked as a dev simulator's.
		n = tc.s.challenge(t)
		req.Nonce, req.Evidence.Quote = n, dev.Quote(attest.BindReportData(attest.Nonce(n), g.tp))
		resp, err := tc.s.c.Attest(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		jwks, _ := tc.s.c.JWKS(ctx)
		ear, err := token.Verify(resp.Token, jwks, "trustgate", tc.s.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if sm, ok := ear.Submods[v1.TEETDX]; !ok || sm.Label != "td-1" || sm.Status != "affirming" || sm.TEEPubKey == nil || !ear.DevSimulator {
			t.Errorf("%s: token %+v", tc.name, ear)
		}
	}
	// A simulated quote whose nonce is not the one bound: report_data_mismatch.
	g := newGuest(t, sim.Options{})
	dev, _ := sim.NewTDX(sim.TDXOptions{MRTD: &approved, RTMR: [4][48]byte{1: rtmr1}})
	n := s.challenge(t)
	body, _ := json.Marshal(v1.AttestRequest{Nonce: n, TEE: v1.TEETDX, TEEPubKey: g.jwk, Evidence: v1.Evidence{Quote: dev.Quote([64]byte{1})}})
	if status, reason := post(t, hc, s.url+v1.PathAttest, "", body); status != 403 || reason != "report_data_mismatch" {
		t.Errorf("unbound quote: %d %q", status, reason)
	}
	if m := scrapeMetrics(t, hc, s.url); !strings.Contains(m, `trustgate_attestations_total{reason="none",result="pass",tee="tdx"} 4`) {
		t.Errorf("metrics:\n%s", m)
	}
	// Without dev_simulator the simulator's root is not trusted.
	prod := startServer(t, refYAML(entry("")), func(c *config.Config) { c.DevSimulator = false })
	n = prod.challenge(t)
	body, _ = json.Marshal(v1.AttestRequest{Nonce: n, TEE: v1.TEETDX, TEEPubKey: g.jwk, Evidence: v1.Evidence{Quote: dev.Quote(attest.BindReportData(attest.Nonce(n), g.tp))}})
	if status, reason := post(t, hc, prod.url+v1.PathAttest, "", body); status != 403 || reason != "cert_chain_invalid" {
		t.Errorf("without dev_simulator: %d %q, want 403 cert_chain_invalid", status, reason)
	}
	// A month later the simulator's collateral is issued again: still
	// UpToDate at the verifier's clock.
	s.clock.Add(40 * 24 * time.Hour)
	n = s.challenge(t)
	body, _ = json.Marshal(v1.AttestRequest{Nonce: n, TEE: v1.TEETDX, TEEPubKey: g.jwk, Evidence: v1.Evidence{Quote: dev.Quote(attest.BindReportData(attest.Nonce(n), g.tp))}})
	if status, reason := post(t, hc, s.url+v1.PathAttest, "", body); status != 200 {
		t.Errorf("40 days later: %d %q", status, reason)
	}
}
