package refvalues

import (
	"errors"
	"testing"
)

// SPEC "AWS Nitro Enclaves": tee nitro, value PCR0, optional pcrs pins.
func TestParseNitro(t *testing.T) {
	t.Parallel()
	ok := `
measurements:
  - tee: nitro
    value: "` + valA + `"
    label: enclave-1
    pcrs:
      pcr1: "` + valB + `"
      pcr8: "` + valA + `"
`
	s, err := Parse([]byte(ok), YAML)
	if err != nil {
		t.Fatal(err)
	}
	if m := s.Measurements[0]; m.TEE != TEENitro || len(m.PCRs) != 2 || m.PCRs["pcr1"] != valB || m.PCRs["pcr8"] != valA {
		t.Fatalf("set %+v", s)
	}
	for name, bad := range map[string]string{
		"pcrs on SEV-SNP":   `{"measurements":[{"value":"` + valA + `","label":"a","pcrs":{"pcr1":"` + valA + `"}}]}`,
		"pcrs on TDX":       `{"measurements":[{"tee":"tdx","value":"` + valA + `","label":"a","pcrs":{"pcr1":"` + valA + `"}}]}`,
		"rtmr on Nitro":     `{"measurements":[{"tee":"nitro","value":"` + valA + `","label":"a","rtmr":[""]}]}`,
		"pcr16":             `{"measurements":[{"tee":"nitro","value":"` + valA + `","label":"a","pcrs":{"pcr16":"` + valA + `"}}]}`,
		"PCR1 spelled":      `{"measurements":[{"tee":"nitro","value":"` + valA + `","label":"a","pcrs":{"PCR1":"` + valA + `"}}]}`,
		"pcr01":             `{"measurements":[{"tee":"nitro","value":"` + valA + `","label":"a","pcrs":{"pcr01":"` + valA + `"}}]}`,
		"pin not hex":       `{"measurements":[{"tee":"nitro","value":"` + valA + `","label":"a","pcrs":{"pcr1":"ABCD"}}]}`,
		"empty pin":         `{"measurements":[{"tee":"nitro","value":"` + valA + `","label":"a","pcrs":{"pcr1":""}}]}`,
		"PCR0 not 48 bytes": `{"measurements":[{"tee":"nitro","value":"abcd","label":"a"}]}`,
	} {
		var ve *ValidationError
		if _, err := Parse([]byte(bad), JSON); !errors.As(err, &ve) {
			t.Errorf("%s: %v, want a *ValidationError", name, err)
		}
	}
}
