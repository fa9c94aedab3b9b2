package tdx_test

import (
	"bytes"
	"encoding/asn1"
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

// The PCK's TCB component SVNs (0-255) and PCESVN (0-0xFFFF) at their
// edges: the largest is read, one more refused.
func TestPCKSVNEdges(t *testing.T) {
	t.Parallel()
	oid := func(a ...int) asn1.ObjectIdentifier {
		return append(asn1.ObjectIdentifier{1, 2, 840, 113741, 1, 13, 1}, a...)
	}
	type ext struct {
		ID    asn1.ObjectIdentifier
		Value any
	}
	exts := func(cpusvn0, pcesvn int) []byte {
		var tcb []ext
		for i := 0; i < 16; i++ {
			tcb = append(tcb, ext{oid(2, i+1), 0})
		}
		tcb[0].Value = cpusvn0
		cpusvn := make([]byte, 16)
		cpusvn[0] = byte(cpusvn0)
		tcb = append(tcb, ext{oid(2, 17), pcesvn}, ext{oid(2, 18), cpusvn})
		b, err := asn1.Marshal([]ext{{oid(1), make([]byte, 16)}, {oid(2), tcb}, {oid(3), []byte{0, 0}}, {oid(4), make([]byte, 6)}, {oid(5), asn1.Enumerated(0)}})
		if err != nil {
			t.Fatal(err)
		}
		return b
	}
	for _, c := range []struct {
		cpusvn0, pcesvn int
		ok              bool
	}{{255, 0xFFFF, true}, {256, 0, false}, {0, 0x10000, false}} {
		chain, err := testkit.NewTDXChain(testkit.TDXChainOptions{PCKExtensions: exts(c.cpusvn0, c.pcesvn)})
		if err != nil {
			t.Fatal(err)
		}
		p, err := tdx.ParsePCK(chain.PCK)
		if c.ok && (err != nil || p.CPUSVN[0] != 255 || p.PCESVN != 0xFFFF) {
			t.Errorf("CPUSVN[0] 255, PCESVN 0xFFFF: %+v, %v", p, err)
		}
		if !c.ok && err == nil {
			t.Errorf("CPUSVN[0] %d, PCESVN %#x: accepted", c.cpusvn0, c.pcesvn)
		}
	}
}
