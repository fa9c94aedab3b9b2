package pcs_test

import (
	"context"
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/tdx"
	"github.com/trustgate/trustgate/internal/testkit"
)

// BenchmarkCollateralWarm is the collateral service's share of a warm TDX
// verification: the four documents from memory, the assembled set reused.
func BenchmarkCollateralWarm(b *testing.B) {
	p := intelPCS(b)
	clk := testkit.NewClock(judged)
	s := newService(b, p, clk, "", nil)
	fm := [6]byte{0xb0, 0xc0, 0x6f, 0, 0, 0}
	req := tdx.CollateralRequest{FMSPC: fm, CA: "platform"}
	if _, err := s.Collateral(context.Background(), req); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := s.Collateral(context.Background(), req); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkTDXVerifyWarmPCS is a warm verification of a real quote with its
// collateral from the service (compare tdx's BenchmarkTDXVerifyWarm, which
// holds the collateral in a tdx.Static).
func BenchmarkTDXVerifyWarmPCS(b *testing.B) {
	p := intelPCS(b)
	clk := testkit.NewClock(judged)
	v := verifier(newService(b, p, clk, "", nil), clk)
	ev := attest.Evidence{Quote: quote(b, "teekit-phala-quote.dat")}
	if _, err := v.VerifyEvidence(context.Background(), ev); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.VerifyEvidence(context.Background(), ev); err != nil {
			b.Fatal(err)
		}
	}
}
