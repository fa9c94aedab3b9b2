package launch_test

import (
	"bytes"
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/launch"
)

// An Azure VM's launch is its hardware report's: the identities of Azure
// claims are those of the SEV-SNP or TDX claims they carry, and the launch
// view lands in the policy input (input.launch) through them.
func TestAzureIdentity(t *testing.T) {
	t.Parallel()
	snp := &attest.Claims{TEE: attest.TEEAzureSNP, ReportID: bytes.Repeat([]byte{3}, 32), ChipID: bytes.Repeat([]byte{4}, 64)}
	td := &attest.TDXClaims{TEE: attest.TEEAzureTDX, MRTD: bytes.Repeat([]byte{1}, 48), MRConfigID: make([]byte, 48), MROwner: make([]byte, 48), MROwnerConfig: make([]byte, 48)}
	for _, tc := range []struct {
		az, inner attest.Verified
		launch    func() *attest.Launch
	}{
		{&attest.AzureSNPClaims{Claims: snp}, snp, func() *attest.Launch { return snp.Launch }},
		{&attest.AzureTDXClaims{TDXClaims: td}, td, func() *attest.Launch { return td.Launch }},
	} {
		l1, c1, ok1 := launch.Identity(tc.az)
		l2, c2, ok2 := launch.Identity(tc.inner)
		if !ok1 || !ok2 || !bytes.Equal(l1, l2) || !bytes.Equal(c1, c2) || len(l1) == 0 {
			t.Errorf("%s: identity %x %x %v, want %x %x %v", tc.az.TEEName(), l1, c1, ok1, l2, c2, ok2)
		}
		view := &attest.Launch{Seq: 2}
		if !launch.SetView(tc.az, view) || tc.launch() != view {
			t.Errorf("%s: the launch view did not reach the claims", tc.az.TEEName())
		}
	}
	if _, _, ok := launch.Identity(&attest.AzureSNPClaims{}); ok {
		t.Error("Azure claims without their SEV-SNP claims have an identity")
	}
}
