package app

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"net/http"
	"strings"
	"testing"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/token"
)

// A --dev-simulator verifier verifies a simulated Nitro enclave end to end
// (chain to the simulator's root, ES384, fields), applies the default
// policy's Nitro rules (PCR0, pcrs pins) and marks the token; each
// rejection has its exact reason; without dev_simulator the simulator's
// root is not trusted.
func TestAttestSimulatedNitro(t *testing.T) {
	t.Parallel()
	pcr1 := hex.EncodeToString(sim.NitroPCRs(approved)[1])
	entry := "  - tee: nitro\n    value: " + hex.EncodeToString(approved[:]) + "\n    label: enclave-1\n    pcrs:\n      pcr1: " + pcr1 + "\n"
	s := startServer(t, refYAML(entry), nil)
	ctx := context.Background()
	other := [48]byte(bytes.Repeat([]byte{0x11}, 48))
	hc := &http.Client{}
	attestBody := func(s *server, dev *sim.NitroDevice, g *guest, bind bool) []byte {
		n := s.challenge(t)
		rd := [64]byte{1}
		if bind {
			rd = attest.BindReportData(attest.Nonce(n), g.tp)
		}
		doc, err := dev.Document(rd)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := json.Marshal(v1.AttestRequest{Nonce: n, TEE: v1.TEENitro, TEEPubKey: g.jwk, Evidence: v1.Evidence{Document: doc}})
		return body
	}
	for _, tc := range []struct {
		name   string
		o      sim.NitroOptions
		bind   bool
		status int
		reason string
	}{
		{"approved enclave", sim.NitroOptions{PCR0: &approved}, true, 200, ""},
		{"debug mode", sim.NitroOptions{PCR0: &approved, Debug: true}, true, 403, "debug_enabled"},
		{"unapproved PCR0", sim.NitroOptions{PCR0: &other}, true, 403, "measurement_mismatch"},
		{"nonce not bound", sim.NitroOptions{PCR0: &approved}, false, 403, "report_data_mismatch"},
	} {
		g := newGuest(t, sim.Options{})
		dev, err := sim.NewNitro(tc.o)
		if err != nil {
			t.Fatal(err)
		}
		if status, reason := post(t, hc, s.url+v1.PathAttest, "", attestBody(s, dev, g, tc.bind)); status != tc.status || reason != tc.reason {
			t.Errorf("%s: %d %q, want %d %q", tc.name, status, reason, tc.status, tc.reason)
			continue
		}
		if tc.status != 200 {
			continue
		}
		var req v1.AttestRequest
		if err := json.Unmarshal(attestBody(s, dev, g, true), &req); err != nil {
			t.Fatal(err)
		}
		resp, err := s.c.Attest(ctx, req)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		jwks, _ := s.c.JWKS(ctx)
		ear, err := token.Verify(resp.Token, jwks, "trustgate", s.clock.Now())
		if err != nil {
			t.Fatal(err)
		}
		if sm, ok := ear.Submods[v1.TEENitro]; !ok || sm.Label != "enclave-1" || sm.Status != "affirming" || sm.TEEPubKey == nil || !ear.DevSimulator {
			t.Errorf("%s: token %+v", tc.name, ear)
		}
	}
	// Evidence of another TEE under tee nitro is malformed.
	g := newGuest(t, sim.Options{})
	n := s.challenge(t)
	body, _ := json.Marshal(v1.AttestRequest{Nonce: n, TEE: v1.TEENitro, Evidence: v1.Evidence{Quote: []byte{4, 0}}})
	if status, reason := post(t, hc, s.url+v1.PathAttest, "", body); status != 400 || reason != "malformed_evidence" {
		t.Errorf("a quote under tee nitro: %d %q", status, reason)
	}
	if m := scrapeMetrics(t, hc, s.url); !strings.Contains(m, `trustgate_attestations_total{reason="none",result="pass",tee="nitro"} 2`) ||
		!strings.Contains(m, `trustgate_attestations_total{reason="debug_enabled",result="fail",tee="nitro"} 1`) {
		t.Errorf("metrics:\n%s", m)
	}
	// Without dev_simulator the simulator's root is not trusted.
	prod := startServer(t, refYAML(entry), func(c *config.Config) { c.DevSimulator = false })
	dev, _ := sim.NewNitro(sim.NitroOptions{PCR0: &approved})
	if status, reason := post(t, hc, prod.url+v1.PathAttest, "", attestBody(prod, dev, g, true)); status != 403 || reason != "cert_chain_invalid" {
		t.Errorf("without dev_simulator: %d %q, want 403 cert_chain_invalid", status, reason)
	}
}
