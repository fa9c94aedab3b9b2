package httpapi

import (
	"bytes"
	"encoding/base64"
	"os"
	"path/filepath"
	"testing"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/attest"
)

// A /v1/attest body with tee azure-snp or azure-tdx carries Trustee's
// evidence layout as it is; it is decoded into AttestInput.Azure, and a
// broken one is malformed_evidence under its tee.
func TestDecodeAzureAttest(t *testing.T) {
	t.Parallel()
	ev, err := os.ReadFile(filepath.Join("..", "..", "testdata", "azure", "snp-evidence-v1.json"))
	if err != nil {
		t.Fatal(err)
	}
	nonce := base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{7}, 64))
	body := func(tee, evidence string) []byte {
		return []byte(`{"nonce":"` + nonce + `","tee":"` + tee + `","evidence":` + evidence + `}`)
	}
	var req v1.AttestRequest
	in, err := decodeAttest(body(v1.TEEAzureSNP, string(ev)), &req)
	if err != nil || in.Azure == nil || in.TEE != v1.TEEAzureSNP || req.TEE != v1.TEEAzureSNP ||
		len(in.Azure.TPMQuote.PCRs) != 24 || len(in.Azure.HCLReport) != 2600 || in.Nonce[0] != 7 {
		t.Fatalf("decodeAttest = %+v, %v", in, err)
	}
	for name, b := range map[string][]byte{
		"no quote":    body(v1.TEEAzureTDX, `{"hcl_report":"SENMQQ"}`),
		"bad hex":     body(v1.TEEAzureSNP, `{"hcl_report":"SENMQQ","tpm_quote":{"message":"zz","signature":"","pcrs":[]}}`),
		"short nonce": []byte(`{"nonce":"AAAA","tee":"azure-snp","evidence":` + string(ev) + `}`),
	} {
		req = v1.AttestRequest{}
		_, err := decodeAttest(b, &req)
		if attest.ReasonOf(err) != attest.ReasonMalformedEvidence || req.TEE == "" {
			t.Errorf("%s: %v (tee %q), want malformed_evidence under its tee", name, err, req.TEE)
		}
	}
	// Azure evidence under another tee is not read as Azure's.
	req = v1.AttestRequest{}
	if in, err := decodeAttest(body(v1.TEESEVSNP, string(ev)), &req); err == nil || in.Azure != nil {
		t.Errorf("sev-snp with Azure evidence: %+v, %v", in, err)
	}
}
