package verifier

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/policy"
	"github.com/trustgate/trustgate/internal/refvalues"
	"github.com/trustgate/trustgate/internal/tee/tdx"
	"github.com/trustgate/trustgate/internal/testkit"
	"github.com/trustgate/trustgate/internal/token"
)

// recordingTokens remembers the appraisal it signed.
type recordingTokens struct{ last token.Appraisal }

func (r *recordingTokens) Issue(a token.Appraisal) (string, string, time.Time, error) {
	r.last = a
	return "tok", "jti", time.Now(), nil
}

// A TDX quote goes to the TDX verifier, its REPORT_DATA is held to the
// nonce, a reference value of tee: tdx approves it, and the token names
// the TEE; the same quote named as sev-snp, or SNP parts or a document
// sent with it as tdx, are malformed_evidence.
func TestAttestTDX(t *testing.T) {
	t.Parallel()
	chain, err := testkit.NewTDXChain(testkit.TDXChainOptions{})
	if err != nil {
		t.Fatal(err)
	}
	col, err := chain.Collateral(testkit.TDXCollateralOptions{})
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := tdx.ParseCollateral(col.Docs()...)
	if err != nil {
		t.Fatal(err)
	}
	tdxV := tdx.New(tdx.Options{Roots: chain.Roots, Collateral: tdx.Static{C: parsed}})
	mrtd := [48]byte{0x5a}
	mrtdHex := attest.Hex(mrtd[:]).String()
	ref := &refvalues.Set{Measurements: []refvalues.Measurement{
		{TEE: "tdx", Value: mrtdHex, Label: "td-build", Resources: []string{"k"}},
	}}
	engine, err := policy.New(context.Background(), policy.Options{Reference: ref})
	if err != nil {
		t.Fatal(err)
	}
	n := attest.Nonce{7, 7, 7}
	cases := []struct {
		name string
		in   AttestInput
		mrtd [48]byte
		rd   attest.Nonce
		want attest.Reason
	}{
		{name: "affirmed", in: AttestInput{TEE: "tdx"}, mrtd: mrtd, rd: n},
		{name: "REPORT_DATA of another nonce", in: AttestInput{TEE: "tdx"}, mrtd: mrtd, rd: attest.Nonce{8}, want: attest.ReasonReportDataMismatch},
		{name: "MRTD not approved", in: AttestInput{TEE: "tdx"}, mrtd: [48]byte{1}, rd: n, want: attest.ReasonMeasurementMismatch},
		{name: "quote named sev-snp", in: AttestInput{TEE: "sev-snp"}, mrtd: mrtd, rd: n, want: attest.ReasonMalformedEvidence},
		{name: "SNP parts as tdx", in: AttestInput{TEE: "tdx", Report: make([]byte, 1184)}, mrtd: mrtd, rd: n, want: attest.ReasonMalformedEvidence},
		{name: "a document beside the quote as tdx", in: AttestInput{TEE: "tdx", Document: []byte{0xd2}}, mrtd: mrtd, rd: n, want: attest.ReasonMalformedEvidence},
		{name: "unknown TEE", in: AttestInput{TEE: "cca"}, mrtd: mrtd, rd: n, want: attest.ReasonMalformedEvidence},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nonces, tokens := &fakeNonces{}, &recordingTokens{}
			s, err := New(Options{
				TEEs:   map[string]TEE{"tdx": tdxV, "sev-snp": snpTEE{fakeSNP{claims: &attest.Claims{}}}},
				Policy: engine, Nonces: nonces, Tokens: tokens,
			})
			if err != nil {
				t.Fatal(err)
			}
			in := tc.in
			in.Nonce = n
			mrtd := tc.mrtd
			in.Quote = chain.Quote(testkit.TDXQuoteFields{MRTD: &mrtd, ReportData: tc.rd})
			_, err = s.Attest(context.Background(), in)
			if got := attest.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
			if tc.want == "" && (tokens.last.TEE != "tdx" || tokens.last.Label != "td-build" || nonces.consumed != 1) {
				t.Fatalf("token %+v, consumed %d", tokens.last, nonces.consumed)
			}
			if tc.want != "" && nonces.consumed != 0 {
				t.Fatal("a refused attempt consumed the nonce")
			}
		})
	}
}

// SEV-SNP evidence is a report and its certificate table: a Nitro document
// sent with them is malformed_evidence, before the SNP verifier runs.
func TestSEVSNPEvidenceRefusesADocument(t *testing.T) {
	t.Parallel()
	calls := 0
	tee := snpTEE{fakeSNP{claims: &attest.Claims{}, called: &calls}}
	ev := attest.Evidence{Report: make([]byte, 1184)}
	if _, err := tee.VerifyEvidence(context.Background(), ev); err != nil || calls != 1 {
		t.Fatalf("report alone: %v, %d calls", err, calls)
	}
	ev.Document = []byte{0xd2}
	_, err := tee.VerifyEvidence(context.Background(), ev)
	var ae *attest.Error
	if !errors.As(err, &ae) || ae.Reason != attest.ReasonMalformedEvidence {
		t.Fatalf("report with a document: %v, want %s", err, attest.ReasonMalformedEvidence)
	}
	if calls != 1 {
		t.Fatalf("the SNP verifier ran on evidence with a document (%d calls)", calls)
	}
}
