package azure

import (
	"context"
	"errors"
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
)

// FuzzVerify feeds evidence JSON to DecodeEvidence and Verify for both
// Azure TEEs: no panic, every refusal an *attest.Error, and nothing but
// the real sets verifies.
func FuzzVerify(f *testing.F) {
	for _, rs := range realSets {
		f.Add(readTestdata(f, rs.file))
	}
	f.Add([]byte(`{"version":1,"hcl_report":"SENMQQ","tpm_quote":{"message":"ff","signature":"00","pcrs":[]}}`))
	v := realVerifier()
	f.Fuzz(func(t *testing.T, b []byte) {
		ev, err := DecodeEvidence(b)
		if err != nil {
			var e *attest.Error
			if !errors.As(err, &e) {
				t.Fatalf("DecodeEvidence error is not an *attest.Error: %v", err)
			}
			return
		}
		for _, tee := range []string{attest.TEEAzureSNP, attest.TEEAzureTDX} {
			c, err := v.Verify(context.Background(), tee, ev)
			if err != nil {
				var e *attest.Error
				if !errors.As(err, &e) {
					t.Fatalf("Verify error is not an *attest.Error: %v", err)
				}
				continue
			}
			if c == nil || c.TEEName() != tee {
				t.Fatalf("Verify(%s) = %v without error", tee, c)
			}
		}
	})
}
