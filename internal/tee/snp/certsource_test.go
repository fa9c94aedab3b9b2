package snp_test

import (
	"context"
	"crypto/x509"
	"errors"
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/testkit"
)

// parsedKeys is a CertKeySource serving one parsed certificate; its DER
// way must not be taken.
type parsedKeys struct {
	t    *testing.T
	cert *x509.Certificate
}

func (k parsedKeys) EndorsementKey(context.Context, snp.KeyRequest) ([]byte, error) {
	k.t.Error("EndorsementKey called: the parsed certificate should be taken")
	return nil, errors.New("not here")
}

func (k parsedKeys) EndorsementCert(context.Context, snp.KeyRequest) (*x509.Certificate, error) {
	return k.cert, nil
}

// A CertKeySource's parsed VCEK is taken as it is (not parsed again), and
// verified all the same: one that does not chain to the pinned roots is
// refused as one from the evidence would be.
func TestCertKeySource(t *testing.T) {
	t.Parallel()
	milan := mustChain(t, testkit.ChainOptions{})
	own := mustChain(t, testkit.ChainOptions{OwnKeys: true})
	cases := []struct {
		name string
		cert []byte
		want attest.Reason
	}{
		{"the chain's VCEK", milan.VCEK(), ""},
		{"a VCEK under another ASK", own.VCEK(), attest.ReasonCertChainInvalid},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			v := snp.New(snp.Options{Roots: milan.Roots, Keys: parsedKeys{t, testkit.Cert(tc.cert)}})
			_, err := v.Verify(context.Background(), snp.Evidence{Report: milan.Report(testkit.ReportFields{})})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			wantReason(t, err, tc.want)
		})
	}
}
