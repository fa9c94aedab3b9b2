package azure

import (
	"context"
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/azure/hcl"
)

// BenchmarkVerifyAzureSNP is one azure-snp verification of real evidence
// with the VCEK chain cached: the P-384 report signature, the runtime-data
// hash and the RSA-2048 quote signature.
func BenchmarkVerifyAzureSNP(b *testing.B) {
	v := realVerifier()
	ev := decodeFile(b, "snp-evidence-v1.json")
	ctx := context.Background()
	if _, err := v.Verify(ctx, attest.TEEAzureSNP, ev); err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, attest.TEEAzureSNP, ev); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkVerifyQuote is the vTPM part alone: the runtime data and the
// RSA-2048 quote signature with its PCR digest.
func BenchmarkVerifyQuote(b *testing.B) {
	ev := decodeFile(b, "snp-evidence-v1.json")
	c, err := realVerifier().Verify(context.Background(), attest.TEEAzureSNP, ev)
	if err != nil || c == nil {
		b.Fatal(err)
	}
	blob, err := hcl.Parse(ev.HCLReport)
	if err != nil {
		b.Fatal(err)
	}
	rt := blob.RuntimeData
	b.ReportAllocs()
	for b.Loop() {
		if _, err := vtpm(rt, ev.TPMQuote); err != nil {
			b.Fatal(err)
		}
	}
}
