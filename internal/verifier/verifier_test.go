package verifier

import (
	"context"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/token"
)

type fakeSNP struct{ claims *attest.Claims }

func (f fakeSNP) Verify(context.Context, snp.Evidence) (*attest.Claims, error) { return f.claims, nil }

type fakePolicy struct{ d attest.Decision }

func (f fakePolicy) Evaluate(context.Context, attest.Verified) (attest.Decision, error) {
	return f.d, nil
}
func (fakePolicy) ID() string { return "sha256:test" }

type fakeNonces struct{ consumed int }

func (*fakeNonces) Check(attest.Nonce) error { return nil }
func (f *fakeNonces) Consume(context.Context, attest.Nonce) error {
	f.consumed++
	return nil
}

type fakeTokens struct{ issued int }

func (f *fakeTokens) Issue(token.Appraisal) (string, string, time.Time, error) {
	f.issued++
	return "tok", "jti", time.Now(), nil
}

// The nonce is consumed and a token issued only when every check passed.
func TestNonceConsumedOnlyOnSuccess(t *testing.T) {
	t.Parallel()
	n := attest.Nonce{1, 2, 3}
	cases := []struct {
		name       string
		reportData attest.Nonce
		decision   attest.Decision
		want       attest.Reason
	}{
		{"affirmed", n, attest.Decision{Allow: true, Label: "b"}, ""},
		{"REPORT_DATA mismatch", attest.Nonce{9}, attest.Decision{Allow: true}, attest.ReasonReportDataMismatch},
		{"policy deny", n, attest.Decision{Reasons: []string{"measurement_mismatch"}}, attest.ReasonMeasurementMismatch},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			nonces, tokens := &fakeNonces{}, &fakeTokens{}
			s, err := New(Options{SNP: fakeSNP{&attest.Claims{ReportData: tc.reportData[:]}}, Policy: fakePolicy{tc.decision}, Nonces: nonces, Tokens: tokens})
			if err != nil {
				t.Fatal(err)
			}
			_, err = s.Attest(context.Background(), AttestInput{Nonce: n, TEE: "sev-snp"})
			if got := attest.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q, want %q", got, tc.want)
			}
			ok := tc.want == ""
			if (nonces.consumed == 1) != ok || (tokens.issued == 1) != ok {
				t.Fatalf("consumed %d, issued %d", nonces.consumed, tokens.issued)
			}
		})
	}
}
