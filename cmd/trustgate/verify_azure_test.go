package main

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var azureData = filepath.Join("..", "..", "testdata", "azure")

func azureFile(name string) string { return filepath.Join(azureData, name) }

// azureMutant writes snp-evidence-v1.json with change applied to its
// decoded JSON (hex quote parts, base64url HCL report).
func azureMutant(t *testing.T, change func(doc map[string]any)) string {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(readFile(t, azureFile("snp-evidence-v1.json")), &doc); err != nil {
		t.Fatal(err)
	}
	change(doc)
	b, err := json.Marshal(doc)
	if err != nil {
		t.Fatal(err)
	}
	return writeTemp(t, "mutant.json", b)
}

// flipHex changes the hex digit at i of s.
func flipHex(s string, i int) string {
	c := byte('0')
	if s[i] == '0' {
		c = '1'
	}
	return s[:i] + string(c) + s[i+1:]
}

// changeHCL applies f to the decoded HCL report of doc.
func changeHCL(t *testing.T, doc map[string]any, f func(b []byte)) {
	b, err := base64.URLEncoding.DecodeString(doc["hcl_report"].(string))
	if err != nil {
		t.Fatal(err)
	}
	f(b)
	doc["hcl_report"] = base64.URLEncoding.EncodeToString(b)
}

// `trustgate verify` reads Azure vTPM evidence (Trustee's layouts), checks
// every link, and refuses each broken one with its reason.
func TestVerifyCLIAzure(t *testing.T) {
	t.Parallel()
	quote := func(doc map[string]any) map[string]any { return doc["tpm_quote"].(map[string]any) }
	var genoaQuote any
	var genoa map[string]any
	if err := json.Unmarshal(readFile(t, azureFile("snp-evidence-genoa.json")), &genoa); err != nil {
		t.Fatal(err)
	}
	genoaQuote = genoa["quote"]
	const challenge = "6368616c6c656e6765"
	const v2Nonce = "982f5c6e45df0ed3f10b6f60b02f0c8390e281300f3805e2279c16168cd6ae9aa398f647caa2338748cd0fd9f5f819ef"
	snpFlags := []string{"--offline", "--no-revocation", "--at", "2026-12-01T00:00:00Z"}
	tdxFlags := []string{"--no-collateral", "--at", "2026-12-01T00:00:00Z"}
	cases := []struct {
		name  string
		args  []string
		code  int
		want  []string
		inErr string
	}{
		{"v0 Milan", append([]string{azureFile("snp-evidence-v0.json"), "--report-data", challenge}, snpFlags...), exitOK,
			[]string{"VERIFIED", "tee:               azure-snp", "product:           Milan", "pcr23:"}, ""},
		{"v1 Milan", append([]string{azureFile("snp-evidence-v1.json"), "--report-data", challenge}, snpFlags...), exitOK,
			[]string{"VERIFIED", "vm_id:             26F8BC30-774E-4290-8E7A-535F3B672AEE", "secure_boot=true"}, ""},
		{"v2 user-data", append([]string{azureFile("snp-evidence-v2.json"), "--report-data", v2Nonce}, snpFlags...), exitOK, []string{"VERIFIED"}, ""},
		{"v2 64-byte report data", append([]string{azureFile("snp-evidence-v2.json"), "--report-data", v2Nonce + strings.Repeat("00", 16)}, snpFlags...), exitOK, []string{"VERIFIED"}, ""},
		{"v2 user-data differs after extraData", append([]string{azureFile("snp-evidence-v2.json"), "--report-data", v2Nonce + strings.Repeat("00", 15) + "01"}, snpFlags...),
			exitRejected, []string{"REJECTED: report_data_mismatch"}, ""},
		{"Genoa", append([]string{azureFile("snp-evidence-genoa.json")}, snpFlags...), exitOK, []string{"product:           Genoa"}, ""},
		{"TDX v0", append([]string{azureFile("tdx-evidence-v0.json"), "--report-data", challenge}, tdxFlags...), exitOK, []string{"tee:               azure-tdx", "mr_td:", "pcr00:"}, ""},
		{"TDX v1", append([]string{azureFile("tdx-evidence-v1.json"), "--report-data", challenge}, tdxFlags...), exitOK, []string{"VERIFIED"}, ""},
		{"other nonce", append([]string{azureFile("snp-evidence-v1.json"), "--report-data", "6368616c6c656e6766"}, snpFlags...), exitRejected, []string{"REJECTED: report_data_mismatch"}, ""},
		{"a PCR", append([]string{azureMutant(t, func(d map[string]any) {
			pcrs := quote(d)["pcrs"].([]any)
			pcrs[7] = flipHex(pcrs[7].(string), 0)
		})}, snpFlags...), exitRejected, []string{"REJECTED: signature_invalid"}, ""},
		{"the quote signature", append([]string{azureMutant(t, func(d map[string]any) { quote(d)["signature"] = flipHex(quote(d)["signature"].(string), 9) })}, snpFlags...),
			exitRejected, []string{"REJECTED: signature_invalid"}, ""},
		{"the quote message", append([]string{azureMutant(t, func(d map[string]any) { quote(d)["message"] = flipHex(quote(d)["message"].(string), 40) })}, snpFlags...),
			exitRejected, []string{"REJECTED: signature_invalid"}, ""},
		{"a TPM quote from another VM", append([]string{azureMutant(t, func(d map[string]any) { d["tpm_quote"] = genoaQuote })}, snpFlags...),
			exitRejected, []string{"REJECTED: signature_invalid"}, ""},
		{"the attestation key", append([]string{azureMutant(t, func(d map[string]any) {
			changeHCL(t, d, func(b []byte) {
				i := bytes.Index(b, []byte(`"kid":"HCLAkPub"`))
				j := i + bytes.Index(b[i:], []byte(`"n":"`)) + 12
				b[j] ^= 1
			})
		})}, snpFlags...), exitRejected, []string{"REJECTED: report_data_mismatch"}, ""},
		{"the user-data", append([]string{azureMutant(t, func(d map[string]any) {
			changeHCL(t, d, func(b []byte) { b[bytes.Index(b, []byte(`"user-data":"`))+13] = '7' })
		})}, snpFlags...), exitRejected, []string{"REJECTED: report_data_mismatch"}, ""},
		{"the report", append([]string{azureMutant(t, func(d map[string]any) { changeHCL(t, d, func(b []byte) { b[0x20+0x90] ^= 1 }) })}, snpFlags...),
			exitRejected, []string{"REJECTED: signature_invalid"}, ""},
		{"report data too long", []string{azureFile("snp-evidence-v1.json"), "--report-data", strings.Repeat("00", 65)}, exitUsage, nil, "report-data"},
		{"short report data on an SNP report", []string{td("trustee-report.bin"), "--report-data", challenge}, exitUsage, nil, "64 bytes"},
		{"collateral flags on azure-snp", []string{azureFile("snp-evidence-v1.json"), "--no-collateral"}, exitUsage, nil, "for TDX"},
		{"VCEK flag on azure-tdx", []string{azureFile("tdx-evidence-v1.json"), "--no-revocation"}, exitUsage, nil, "for SEV-SNP"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(append([]string{"verify"}, tc.args...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if !strings.Contains(errOut, tc.inErr) {
				t.Errorf("stderr lacks %q:\n%s", tc.inErr, errOut)
			}
		})
	}
}

// --json gives the claims of SPEC "Azure confidential VMs": the underlying
// TEE's plus tpm (pcr00 … pcr23) and azure.
func TestVerifyCLIAzureJSON(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCLI("verify", azureFile("tdx-evidence-v1.json"), "--json", "--no-collateral", "--report-data", "6368616c6c656e6765")
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	var v struct {
		Verdict string `json:"verdict"`
		Claims  struct {
			TEE   string            `json:"tee"`
			MRTD  string            `json:"mr_td"`
			TPM   map[string]string `json:"tpm"`
			Azure struct {
				VMID       string `json:"vm_id"`
				SecureBoot bool   `json:"secure_boot"`
			} `json:"azure"`
		} `json:"claims"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	c := v.Claims
	if v.Verdict != "VERIFIED" || c.TEE != "azure-tdx" || len(c.MRTD) != 96 || len(c.TPM) != 24 || len(c.TPM["pcr23"]) != 64 ||
		c.Azure.VMID != "6332533D-5649-4D02-8AA7-8F64B7C3EE21" || !c.Azure.SecureBoot {
		t.Fatalf("claims: %+v", v)
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}
