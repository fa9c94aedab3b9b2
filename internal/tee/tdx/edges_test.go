package tdx_test

import (
	"bytes"
	"encoding/binary"
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/tdx"
	"github.com/trustgate/trustgate/internal/testkit"
)

// Input and collateral size limits at their edges: the limit is taken,
// one byte more is refused (scripts/probe, narrowing mutants).
func TestTDXSizeLimitEdges(t *testing.T) {
	t.Parallel()
	quote := func(n int) []byte {
		b := make([]byte, n)
		binary.LittleEndian.PutUint16(b[0:2], 4)
		binary.LittleEndian.PutUint16(b[2:4], 2)    // ECDSA P-256
		binary.LittleEndian.PutUint32(b[4:8], 0x81) // TDX
		return b
	}
	if _, err := tdx.DecodeQuote(quote(tdx.MaxInputSize)); err != nil {
		t.Fatalf("input of MaxInputSize bytes: %v", err)
	}
	if _, err := tdx.DecodeQuote(quote(tdx.MaxInputSize + 1)); attest.ReasonOf(err) != attest.ReasonMalformedEvidence {
		t.Fatalf("input one byte over MaxInputSize: %v, want malformed_evidence", err)
	}

	col, err := mustTDXChain(t).Collateral(testkit.TDXCollateralOptions{})
	if err != nil {
		t.Fatal(err)
	}
	docs := col.Docs()
	pad := func(d []byte, n int) []byte { return append(bytes.Clone(d), bytes.Repeat([]byte(" "), n-len(d))...) }
	at := append([][]byte{pad(docs[0], tdx.MaxCollateralSize)}, docs[1:]...)
	if _, err := tdx.ParseCollateral(at...); err != nil {
		t.Fatalf("a collateral document of MaxCollateralSize bytes: %v", err)
	}
	over := append([][]byte{pad(docs[0], tdx.MaxCollateralSize+1)}, docs[1:]...)
	if _, err := tdx.ParseCollateral(over...); err == nil {
		t.Fatal("a collateral document one byte over MaxCollateralSize: accepted")
	}
}
