package sim_test

import (
	"context"
	"crypto/ecdsa"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/tee/tdx"
)

// A simulated TDX quote verifies end to end (PCK chain, QE binding,
// signatures, the simulator's own collateral, TCB status UpToDate) under
// the simulator's roots, and under Intel's root it does not; DevTDX, the
// --dev-simulator verifier, takes it and keeps Intel's verdict for others.
func TestSimulatedTDXQuoteVerifiesOnlyUnderItsRoot(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	var rd [64]byte
	rd[0], rd[63] = 7, 9
	simV, err := sim.NewTDXVerifier(tdx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	intel := tdx.New(tdx.Options{Collateral: &sim.TDXCollateralSource{}})
	dev := sim.DevTDX{Intel: intel, Sim: simV}
	for _, version := range []uint16{4, 5} {
		d, err := sim.NewTDX(sim.TDXOptions{Version: version})
		if err != nil {
			t.Fatal(err)
		}
		ev := attest.Evidence{Quote: d.Quote(rd)}
		for name, v := range map[string]sim.TEE{"simulator": simV, "dev": dev} {
			got, err := v.VerifyEvidence(ctx, ev)
			if err != nil {
				t.Fatalf("v%d under the %s verifier: %v", version, name, err)
			}
			c := got.(*attest.TDXClaims)
			if c.TCBStatus != "UpToDate" || c.QuoteVersion != version {
				t.Errorf("v%d %s: tcb_status %q, version %d", version, name, c.TCBStatus, c.QuoteVersion)
			}
			if err := attest.Expect(got, sim.DefaultMeasurement[:], rd[:]); err != nil {
				t.Errorf("v%d %s: %v", version, name, err)
			}
		}
		if _, err := intel.VerifyEvidence(ctx, ev); attest.ReasonOf(err) != attest.ReasonCertChainInvalid {
			t.Errorf("v%d under Intel's root: %v, want cert_chain_invalid", version, err)
		}
	}
	// A debuggable simulated TD is refused by the simulator's verifier,
	// through DevTDX, with its own reason.
	d, _ := sim.NewTDX(sim.TDXOptions{Debug: true})
	if _, err := dev.VerifyEvidence(ctx, attest.Evidence{Quote: d.Quote(rd)}); attest.ReasonOf(err) != attest.ReasonDebugEnabled {
		t.Errorf("debug TD: %v, want debug_enabled", err)
	}
	// A quote of another Intel-like root is Intel's verdict.
	if _, err := dev.VerifyEvidence(ctx, attest.Evidence{Quote: []byte("junk")}); attest.ReasonOf(err) != attest.ReasonMalformedEvidence {
		t.Errorf("junk: %v", err)
	}
}

// The simulator's PKI is the same in every process: a verifier started
// apart from the guest trusts its quotes. Two derivations of the keys
// agree, and the root key is the one derived from its label.
func TestSimulatedTDXPKIIsFixed(t *testing.T) {
	t.Parallel()
	r1, err := sim.TDXRoots()
	if err != nil {
		t.Fatal(err)
	}
	c, err := sim.NewTDXChain(sim.TDXChainOptions{Created: time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC), Keys: sim.TDXKey})
	if err != nil {
		t.Fatal(err)
	}
	if !r1.Root.PublicKey.(*ecdsa.PublicKey).Equal(c.Root.PublicKey) {
		t.Error("the simulator's root key differs between two derivations")
	}
	if r1.Root.NotBefore.Year() != 2025 || r1.Root.NotAfter.Year() < 2049 {
		t.Errorf("root valid %v to %v", r1.Root.NotBefore, r1.Root.NotAfter)
	}
}

// Collateral of the simulator is issued for the time asked, and another
// FMSPC is collateral_unavailable.
func TestSimulatedTDXCollateral(t *testing.T) {
	t.Parallel()
	at := time.Date(2031, 3, 4, 5, 6, 7, 0, time.UTC)
	src := &sim.TDXCollateralSource{Now: func() time.Time { return at }}
	col, err := src.Collateral(context.Background(), tdx.CollateralRequest{FMSPC: sim.DefaultTDXFMSPC, CA: "platform"})
	if err != nil || len(col.TCBInfos) != 1 || !col.TCBInfos[0].IssueDate.Equal(at.Add(-time.Hour)) {
		t.Fatalf("collateral: %v", err)
	}
	if _, err := src.Collateral(context.Background(), tdx.CollateralRequest{FMSPC: [6]byte{1}}); attest.ReasonOf(err) != attest.ReasonCollateralUnavailable {
		t.Errorf("other FMSPC: %v", err)
	}
	// Judged in 2031 by a verifier at that time, a simulated quote is UpToDate.
	v, _ := sim.NewTDXVerifier(tdx.Options{Now: func() time.Time { return at }})
	d, _ := sim.NewTDX(sim.TDXOptions{})
	if got, err := v.VerifyEvidence(context.Background(), attest.Evidence{Quote: d.Quote([64]byte{})}); err != nil || got.(*attest.TDXClaims).TCBStatus != "UpToDate" {
		t.Errorf("at %v: %v", at, err)
	}
}
