package sim

import (
	"bytes"
	"context"
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/nitro"
)

// A simulated enclave's document verifies under the simulator's root only;
// AWS's refuses it; a --dev-simulator verifier (DevNitro) takes it, and a
// debug-mode enclave is still debug_enabled there.
func TestSimulatedNitroDocumentVerifiesOnlyUnderItsRoot(t *testing.T) {
	t.Parallel()
	d, err := NewNitro(NitroOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rd := [64]byte(bytes.Repeat([]byte{7}, 64))
	doc, err := d.Document(rd)
	if err != nil {
		t.Fatal(err)
	}
	ev := attest.Evidence{Document: doc}
	if _, err := nitro.New(nitro.Options{}).VerifyEvidence(context.Background(), ev); attest.ReasonOf(err) != attest.ReasonCertChainInvalid {
		t.Fatalf("AWS's root took a simulated document: %v", err)
	}
	simV, err := NewNitroVerifier(nitro.Options{})
	if err != nil {
		t.Fatal(err)
	}
	dev := DevNitro{Intel: nitro.New(nitro.Options{}), Sim: simV}
	v, err := dev.VerifyEvidence(context.Background(), ev)
	if err != nil {
		t.Fatal(err)
	}
	if err := attest.ExpectReportData(v, rd[:]); err != nil || !bytes.Equal(v.LaunchMeasurement(), DefaultMeasurement[:]) {
		t.Fatalf("%v %x", err, v.LaunchMeasurement())
	}
	dbg, err := NewNitro(NitroOptions{Debug: true})
	if err != nil {
		t.Fatal(err)
	}
	doc, err = dbg.Document(rd)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := dev.VerifyEvidence(context.Background(), attest.Evidence{Document: doc}); attest.ReasonOf(err) != attest.ReasonDebugEnabled {
		t.Fatalf("debug enclave: %v", err)
	}
	// The PKI is fixed: made again, it is the same root.
	k1, _ := NitroKey(0)
	k2, _ := NitroKey(0)
	if !k1.Equal(k2) {
		t.Fatal("NitroKey is not fixed")
	}
}
