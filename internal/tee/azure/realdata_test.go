package azure

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/tee/tdx"
)

// testdataDir holds real Azure evidence sets; SOURCES.md there says where
// each comes from and what it verifies to.
var testdataDir = filepath.Join("..", "..", "..", "testdata", "azure")

func readTestdata(t testing.TB, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeFile(t testing.TB, name string) attest.AzureEvidence {
	t.Helper()
	ev, err := DecodeEvidence(readTestdata(t, name))
	if err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	return ev
}

// realVerifier verifies SEV-SNP with the defaults (AMD roots, the VCEK from
// the evidence) and TDX without Intel collateral: the TD quote's PCK chain
// and signatures are checked, its TCB status is internal/tee/tdx's to test.
func realVerifier() *Verifier {
	now := func() time.Time { return judged }
	return New(Options{SNP: snp.New(snp.Options{Now: now}), TDX: tdx.New(tdx.Options{NoCollateral: true, Now: now})})
}

// judged is when the real evidence is judged: every certificate of it is
// valid then.
var judged = time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)

var challenge = []byte("challenge")

func mustHex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(s)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// realSets are the six evidence sets of testdata/azure with what
// SOURCES.md says they verify to.
var realSets = []struct {
	file, tee, nonce, vmID, product string
}{
	{"snp-evidence-v0.json", attest.TEEAzureSNP, "challenge", "", "Milan"},
	{"snp-evidence-v1.json", attest.TEEAzureSNP, "challenge", "26F8BC30-774E-4290-8E7A-535F3B672AEE", "Milan"},
	{"snp-evidence-v2.json", attest.TEEAzureSNP, "982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef", "7DF7B373-B947-4AAA-96E5-C358F2A03D20", "Milan"},
	{"snp-evidence-genoa.json", attest.TEEAzureSNP, "0218488bae25d2509232bf676f1a66a30d7372add909109b36016ef136f2938ca05475f8b46094de6b64270ea35d950f", "390CBCF5-6C67-4D9B-98EF-C3F1699CC8FC", "Genoa"},
	{"tdx-evidence-v0.json", attest.TEEAzureTDX, "challenge", "", ""},
	{"tdx-evidence-v1.json", attest.TEEAzureTDX, "challenge", "", ""},
}

func nonceOf(t testing.TB, s string) []byte {
	if s == "challenge" {
		return challenge
	}
	return mustHex(t, s)
}

func TestRealEvidenceVerifies(t *testing.T) {
	t.Parallel()
	v := realVerifier()
	for _, rs := range realSets {
		t.Run(rs.file, func(t *testing.T) {
			t.Parallel()
			c, err := v.Verify(context.Background(), rs.tee, decodeFile(t, rs.file))
			if err != nil {
				t.Fatalf("Verify: %v", err)
			}
			if c.TEEName() != rs.tee {
				t.Errorf("tee %q, want %q", c.TEEName(), rs.tee)
			}
			nonce := nonceOf(t, rs.nonce)
			if err := attest.ExpectReportData(c, nonce); err != nil {
				t.Errorf("ExpectReportData(%s): %v", rs.nonce, err)
			}
			other := append([]byte{}, nonce...)
			other[len(other)-1] ^= 1
			if got := attest.ReasonOf(attest.ExpectReportData(c, other)); got != attest.ReasonReportDataMismatch {
				t.Errorf("ExpectReportData(another nonce) reason %q, want report_data_mismatch", got)
			}
			var m map[string]any
			b, _ := json.Marshal(c)
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			if m["tee"] != rs.tee {
				t.Errorf("claims tee %v", m["tee"])
			}
			tpm, _ := m["tpm"].(map[string]any)
			if len(tpm) != 24 {
				t.Errorf("tpm claims hold %d PCRs, want 24", len(tpm))
			}
			for k, val := range tpm {
				if s, _ := val.(string); len(s) != 64 || strings.ToLower(s) != s || !strings.HasPrefix(k, "pcr") {
					t.Errorf("tpm claim %s = %v", k, val)
				}
			}
			az, _ := m["azure"].(map[string]any)
			if az["secure_boot"] != true || az["tpm_enabled"] != true || az["console_enabled"] != true {
				t.Errorf("azure claims %v", az)
			}
			if rs.vmID != "" && az["vm_id"] != rs.vmID {
				t.Errorf("vm_id %v, want %s", az["vm_id"], rs.vmID)
			}
			if rs.product != "" && m["product"] != rs.product {
				t.Errorf("product %v, want %s", m["product"], rs.product)
			}
			if rs.tee == attest.TEEAzureTDX && m["mr_td"] == "" {
				t.Errorf("TDX claims without mr_td")
			}
		})
	}
}

// The v0 and v1 layouts of one TDX VM decode to the same evidence.
func TestLayoutsAgree(t *testing.T) {
	t.Parallel()
	v0, v1 := decodeFile(t, "tdx-evidence-v0.json"), decodeFile(t, "tdx-evidence-v1.json")
	a, _ := json.Marshal(v0)
	b, _ := json.Marshal(v1)
	if string(a) != string(b) {
		t.Error("v0 and v1 TDX evidence decode differently")
	}
}

// tdxTestdata reads a file of testdata/tdx.
func tdxTestdata(name string) ([]byte, error) {
	return os.ReadFile(filepath.Join(testdataDir, "..", "tdx", name))
}
