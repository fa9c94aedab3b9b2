package azure

import (
	"fmt"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/attest"
)

// DecodeEvidence's version range and PCR count at their edges: the last
// value inside is framed, the first outside refused (scripts/probe,
// narrowing mutants).
func TestDecodeEvidenceEdges(t *testing.T) {
	t.Parallel()
	evidence := func(version, pcrs int) []byte {
		p := strings.TrimSuffix(strings.Repeat(`"00",`, pcrs), ",")
		return []byte(fmt.Sprintf(`{"version":%d,"hcl_report":"SENMQQ","tpm_quote":{"message":"ff","signature":"00","pcrs":[%s]}}`, version, p))
	}
	for _, c := range []struct {
		version, pcrs int
		want          attest.Reason
	}{
		{0, 1, ""}, {2, maxPCRs, ""},
		{-1, 1, attest.ReasonUnsupportedVersion}, {3, 1, attest.ReasonUnsupportedVersion},
		{2, maxPCRs + 1, attest.ReasonMalformedEvidence},
	} {
		_, err := DecodeEvidence(evidence(c.version, c.pcrs))
		if attest.ReasonOf(err) != c.want {
			t.Errorf("version %d, %d PCRs: %v, want %q", c.version, c.pcrs, err, c.want)
		}
	}
}
