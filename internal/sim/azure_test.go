package sim_test

import (
	"context"
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/tee/azure"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/tee/tdx"
)

// A simulated Azure CVM's evidence — through the wire layout the agent
// sends — verifies link by link with a --dev-simulator verifier, binds its
// REPORT_DATA through the quote's extraData and the user-data, carries the
// simulated PCRs; a verifier that does not trust the simulator refuses it.
func TestAzureSimulatorVerifies(t *testing.T) {
	t.Parallel()
	simTDX, err := sim.NewTDXVerifier(tdx.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dev := azure.New(azure.Options{SNP: snp.New(snp.Options{Roots: snp.AMDRoots().WithARKKey(sim.ARKKey())}), TDX: simTDX})
	prod := azure.New(azure.Options{TDX: tdx.New(tdx.Options{NoCollateral: true})})
	snpDev, err := sim.NewAzureSNP(sim.Options{}, sim.AzureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tdxDev, err := sim.NewAzureTDX(sim.TDXOptions{}, sim.AzureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	var rd [64]byte
	for i := range rd {
		rd[i] = byte(i)
	}
	for _, d := range []*sim.AzureDevice{snpDev, tdxDev} {
		ev, err := d.Evidence(rd)
		if err != nil {
			t.Fatal(err)
		}
		wire, err := azure.EncodeEvidence(ev)
		if err != nil {
			t.Fatal(err)
		}
		back, err := azure.DecodeEvidence(wire)
		if err != nil {
			t.Fatal(err)
		}
		c, err := dev.Verify(context.Background(), d.TEE(), back)
		if err != nil {
			t.Fatalf("%s: %v", d.TEE(), err)
		}
		if err := attest.ExpectReportData(c, rd[:]); err != nil {
			t.Errorf("%s: %v", d.TEE(), err)
		}
		other := rd
		other[63] ^= 1 // extraData (48 bytes) holds, user-data does not
		if attest.ReasonOf(attest.ExpectReportData(c, other[:])) != attest.ReasonReportDataMismatch {
			t.Errorf("%s: another REPORT_DATA past byte 48 is bound", d.TEE())
		}
		pcrs := sim.DefaultPCRs()
		var tpm map[string]attest.Hex
		switch c := c.(type) {
		case *attest.AzureSNPClaims:
			tpm = c.TPM
		case *attest.AzureTDXClaims:
			tpm = c.TPM
		}
		if len(tpm) != 24 || string(tpm["pcr07"]) != string(pcrs[7][:]) {
			t.Errorf("%s: tpm claims %v", d.TEE(), tpm)
		}
		if _, err := prod.Verify(context.Background(), d.TEE(), back); attest.ReasonOf(err) != attest.ReasonCertChainInvalid {
			t.Errorf("%s: a verifier that does not trust the simulator: %v, want cert_chain_invalid", d.TEE(), err)
		}
	}
}
