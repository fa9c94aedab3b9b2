package snp_test

import (
	"context"
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/testkit"
)

// VerifyEvidence takes SEV-SNP's parts only: evidence that verifies is
// malformed_evidence once it also carries a TDX quote, which is never
// silently dropped.
func TestVerifyEvidenceRefusesAQuote(t *testing.T) {
	t.Parallel()
	c := mustChain(t, testkit.ChainOptions{})
	v := snp.New(snp.Options{Roots: c.Roots})
	ev := attest.Evidence{Report: c.Report(testkit.ReportFields{}), CertTable: c.CertTable()}
	if _, err := v.VerifyEvidence(context.Background(), ev); err != nil {
		t.Fatalf("without a quote: %v", err)
	}
	ev.Quote = []byte{4, 0, 2, 0}
	_, err := v.VerifyEvidence(context.Background(), ev)
	wantReason(t, err, attest.ReasonMalformedEvidence)
}
