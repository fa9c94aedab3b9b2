package refvalues

import (
	"errors"
	"strings"
	"testing"
)

// Azure entries pin PCRs (SPEC "Azure confidential VMs"): value may be "",
// at least one pin, named pcr00 … pcr23, SHA-256 hex; pins on other TEEs
// are refused.
func TestParseAzure(t *testing.T) {
	t.Parallel()
	pcr := strings.Repeat("ab", 32)
	ok := `
measurements:
  - tee: azure-snp
    value: ""
    label: az
    pcrs: {pcr04: "` + pcr + `", pcr23: "` + pcr + `"}
  - tee: azure-tdx
    value: "` + valB + `"
    label: aztd
    pcrs: {pcr00: "` + pcr + `"}
`
	s, err := Parse([]byte(ok), YAML)
	if err != nil {
		t.Fatal(err)
	}
	if m := s.Measurements[0]; m.TEE != TEEAzureSNP || m.Value != "" || m.PCRs["pcr23"] != pcr || s.Measurements[1].PCRs["pcr00"] != pcr {
		t.Fatalf("set %+v", s)
	}
	for name, bad := range map[string]string{
		"no pin":            `{"measurements":[{"tee":"azure-snp","value":"","label":"a"}]}`,
		"pcr24":             `{"measurements":[{"tee":"azure-snp","value":"","label":"a","pcrs":{"pcr24":"` + pcr + `"}}]}`,
		"pcr4":              `{"measurements":[{"tee":"azure-snp","value":"","label":"a","pcrs":{"pcr4":"` + pcr + `"}}]}`,
		"short pcr":         `{"measurements":[{"tee":"azure-tdx","value":"","label":"a","pcrs":{"pcr04":"abcd"}}]}`,
		"upper-case pcr":    `{"measurements":[{"tee":"azure-tdx","value":"","label":"a","pcrs":{"pcr04":"` + strings.ToUpper(pcr) + `"}}]}`,
		"pcrs on SEV-SNP":   `{"measurements":[{"value":"` + valA + `","label":"a","pcrs":{"pcr04":"` + pcr + `"}}]}`,
		"empty SNP value":   `{"measurements":[{"value":"","label":"a"}]}`,
		"rtmr on azure-tdx": `{"measurements":[{"tee":"azure-tdx","value":"","label":"a","pcrs":{"pcr04":"` + pcr + `"},"rtmr":[""]}]}`,
	} {
		var ve *ValidationError
		if _, err := Parse([]byte(bad), JSON); !errors.As(err, &ve) {
			t.Errorf("%s: %v, want a *ValidationError", name, err)
		}
	}
}
