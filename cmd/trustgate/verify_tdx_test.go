package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var tdxData = filepath.Join("..", "..", "testdata", "tdx")

func tdxFile(name string) string { return filepath.Join(tdxData, name) }

// col2025 are --collateral flags for Intel's PCS answers of 2025-11-17.
func col2025(tcbInfo string) []string {
	var args []string
	for _, f := range []string{tcbInfo, "migtd-qeidentity.json", "migtd-pckcrl-platform.pem", "migtd-rootcrl.pem", "intel-tcb-signing-chain-2025.pem"} {
		args = append(args, "--collateral", tdxFile(f))
	}
	return append(args, "--at", "2025-11-20T00:00:00Z")
}

func readTDX(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(tdxFile(name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// `trustgate verify` recognises a TDX quote and judges it as SPEC "Intel
// TDX" says, with exit codes 0, 1, 2 and 3.
func TestVerifyCLITDX(t *testing.T) {
	t.Parallel()
	phala := readTDX(t, "teekit-phala-quote.dat")
	const phalaMRTD = "91eb2b44d141d4ece09f0c75c2c53d247a3c68edd7fafe8a3520c942a604a407de03ae6dc5f87f27428b2538873118b7"
	const phalaRD = "9a9d48e7f6799642d3d1b34e1e5e1742d4bb02dd6ddd551862c1211d35c304f9eca3efdbb481601c163cf52493d6e44aed55d51ec39b7e518fadb92c2b523f20"
	hexFile := writeTemp(t, "q.hex", []byte(hex.EncodeToString(phala)+"\n"))
	b64File := writeTemp(t, "q.b64", []byte(base64.StdEncoding.EncodeToString(append(phala, make([]byte, 100)...))))
	refs := writeTemp(t, "ref.yaml", []byte("measurements:\n  - tee: tdx\n    value: \"21e8dead92d6c69d7cbba79816686c03a48485c7df0c11f6f04792d5e1d378f6b8c46615ba6946adccac6becffbb1e88\"\n    label: td\n"))
	junk := writeTemp(t, "junk.json", []byte(`{"nothing": 1}`))
	cases := []struct {
		name   string
		args   []string
		code   int
		want   []string // substrings of stdout
		stderr string
	}{
		{"Phala UpToDate", append([]string{tdxFile("teekit-phala-quote.dat")}, col2025("migtd-tcbinfo-b0c06f000000.json")...), exitOK,
			[]string{"VERIFIED", "tcb_status:        UpToDate", "fmspc:             b0c06f000000"}, ""},
		{"GCP JSON form", append([]string{tdxFile("teekit-gcp-quote-v4.json")}, col2025("migtd-tcbinfo-00806f050000.json")...), exitOK,
			[]string{"VERIFIED", "tcb_status:        UpToDate"}, ""},
		{"MigTD collateral bundle", []string{tdxFile("teekit-phala-quote.dat"), "--collateral", tdxFile("migtd-collateral-production.json"), "--at", "2025-11-20T00:00:00Z"},
			exitOK, []string{"VERIFIED", "tcb_status:        UpToDate"}, ""},
		{"hex input", append([]string{hexFile}, col2025("migtd-tcbinfo-b0c06f000000.json")...), exitOK, []string{"VERIFIED"}, ""},
		{"base64 input with bytes after the quote", append([]string{b64File}, col2025("migtd-tcbinfo-b0c06f000000.json")...), exitOK, []string{"VERIFIED"}, ""},
		{"expected MRTD and REPORT_DATA", append([]string{tdxFile("teekit-phala-quote.dat"), "--measurement", phalaMRTD, "--report-data", phalaRD},
			col2025("migtd-tcbinfo-b0c06f000000.json")...), exitOK, []string{"VERIFIED"}, ""},
		{"other MRTD", append([]string{tdxFile("teekit-phala-quote.dat"), "--measurement", strings.Repeat("00", 48)},
			col2025("migtd-tcbinfo-b0c06f000000.json")...), exitRejected, []string{"REJECTED: measurement_mismatch"}, ""},
		{"other REPORT_DATA", append([]string{tdxFile("teekit-phala-quote.dat"), "--report-data", strings.Repeat("00", 64)},
			col2025("migtd-tcbinfo-b0c06f000000.json")...), exitRejected, []string{"REJECTED: report_data_mismatch"}, ""},
		{"OutOfDate refused", append([]string{tdxFile("trustee-quote-6.dat")}, col2025("migtd-tcbinfo-00a06d080000.json")...), exitRejected,
			[]string{"REJECTED: tcb_out_of_date", "status of this platform is OutOfDate"}, ""},
		{"OutOfDate refused, advisories named", append([]string{tdxFile("trustee-quote-v4.dat"), "--allow-debug"}, col2025("migtd-tcbinfo-50806f000000.json")...), exitRejected,
			[]string{"REJECTED: tcb_out_of_date", "OutOfDate (advisories INTEL-SA-00837, "}, ""},
		{"OutOfDate accepted by --tcb-status", append([]string{tdxFile("trustee-quote-6.dat"), "--tcb-status", "UpToDate,OutOfDate"}, col2025("migtd-tcbinfo-00a06d080000.json")...), exitOK,
			[]string{"VERIFIED", "tcb_status:        OutOfDate"}, ""},
		{"OutOfDate denied by the default policy", append([]string{tdxFile("trustee-quote-6.dat"), "--data", refs}, col2025("migtd-tcbinfo-00a06d080000.json")...), exitRejected,
			[]string{"REJECTED: tcb_out_of_date"}, ""},
		{"no matching TCB level", append([]string{tdxFile("trustee-quote-v5.dat")}, col2025("migtd-tcbinfo-90c06f000000.json")...), exitRejected,
			[]string{"REJECTED: tcb_out_of_date"}, ""},
		{"SPR E4 with its 2023 collateral", []string{tdxFile("gotdxguest-spr-e4-quote-v4.dat"), "--at", "2023-06-20T00:00:00Z",
			"--collateral", tdxFile("gotdxguest-tcbinfo-50806f000000.json"), "--collateral", tdxFile("gotdxguest-qeidentity.json"),
			"--collateral", tdxFile("gotdxguest-pckcrl-platform.der"), "--collateral", tdxFile("gotdxguest-rootcrl.der"),
			"--collateral", tdxFile("intel-tcb-signing-chain-2018.pem")}, exitRejected, []string{"REJECTED: tcb_out_of_date"}, ""},
		{"debug TD", append([]string{tdxFile("trustee-quote-v4.dat")}, col2025("migtd-tcbinfo-50806f000000.json")...), exitRejected, []string{"REJECTED: debug_enabled"}, ""},
		{"debug TD allowed", append([]string{tdxFile("trustee-quote-v4.dat"), "--allow-debug", "--tcb-status", "OutOfDate"}, col2025("migtd-tcbinfo-50806f000000.json")...), exitOK, []string{"debug=true"}, ""},
		{"no collateral, PCS unreachable", []string{tdxFile("teekit-phala-quote.dat"), "--pcs-url", "http://127.0.0.1:1", "--pcs-root-crl-url", "http://127.0.0.1:1/r.der"},
			exitUnavailable, []string{"REJECTED: collateral_unavailable"}, ""},
		{"offline without collateral", []string{tdxFile("teekit-phala-quote.dat"), "--offline"}, exitUnavailable, []string{"REJECTED: collateral_unavailable", "offline"}, ""},
		{"collateral of another FMSPC", append([]string{tdxFile("teekit-phala-quote.dat")}, col2025("migtd-tcbinfo-90c06f000000.json")...), exitUnavailable,
			[]string{"REJECTED: collateral_unavailable"}, ""},
		{"collateral expired", []string{tdxFile("teekit-phala-quote.dat"), "--collateral", tdxFile("migtd-tcbinfo-b0c06f000000.json"),
			"--collateral", tdxFile("migtd-qeidentity.json"), "--collateral", tdxFile("migtd-pckcrl-platform.pem"), "--collateral", tdxFile("migtd-rootcrl.pem"),
			"--at", "2026-06-01T00:00:00Z"}, exitUnavailable, []string{"REJECTED: collateral_unavailable"}, ""},
		{"no collateral asked for", []string{tdxFile("teekit-azure-quote-v4.b64"), "--no-collateral", "--at", "2026-01-01T00:00:00Z"}, exitOK,
			[]string{"VERIFIED", "tcb_status:        (not checked: no collateral)"}, "TCB status, QE identity and CRLs are not checked"},
		{"v5 quote without collateral", []string{tdxFile("gotdxguest-quote-v5.dat"), "--no-collateral", "--at", "2026-12-01T00:00:00Z"}, exitOK,
			[]string{"quote_version:     5", "tee_tcb_svn2:      0d010400000000000000000000000000"}, ""},
		{"SNP flag on a quote", []string{tdxFile("teekit-phala-quote.dat"), "--vcek", td("trustee-vcek.der")}, exitUsage, nil, "for SEV-SNP reports"},
		{"unreadable collateral", []string{tdxFile("teekit-phala-quote.dat"), "--collateral", junk}, exitUsage, nil, "--collateral"},
		{"collateral flags on an SNP report", []string{td("trustee-report.bin"), "--no-collateral"}, exitUsage, nil, "for TDX quotes"},
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
			if !strings.Contains(errOut, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, errOut)
			}
		})
	}
}

// --json gives the TDX claims of SPEC "Intel TDX" as lowercase hex.
func TestVerifyCLITDXJSON(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCLI(append([]string{"verify", tdxFile("trustee-quote-6.dat"), "--json", "--tcb-status", "OutOfDate"}, col2025("trustee-tcbinfo-00a06d080000.json")...)...)
	if code != exitOK {
		t.Fatalf("exit %d\n%s\n%s", code, out, errOut)
	}
	var v struct {
		Verdict string         `json:"verdict"`
		Claims  map[string]any `json:"claims"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	c := v.Claims
	if v.Verdict != "VERIFIED" || c["tee"] != "tdx" || c["tcb_status"] != "OutOfDate" || c["fmspc"] != "00a06d080000" ||
		c["mr_td"] != "21e8dead92d6c69d7cbba79816686c03a48485c7df0c11f6f04792d5e1d378f6b8c46615ba6946adccac6becffbb1e88" {
		t.Fatalf("%s", out)
	}
	for _, k := range []string{"quote_version", "mr_config_id", "mr_owner", "mr_owner_config", "rtmr0", "rtmr1", "rtmr2", "rtmr3",
		"mr_seam", "mr_signer_seam", "seam_attributes", "td_attributes", "xfam", "tee_tcb_svn", "report_data"} {
		if _, ok := c[k]; !ok {
			t.Errorf("claims lack %s", k)
		}
	}
}

// Evidence as other projects write it is read (issue 21, items 1–3): hex
// with a 0x prefix (dcap-qvl, Ethereum tooling), a report followed by other
// bytes, and input meant as a TDX quote (--collateral, --no-collateral)
// that is none is a rejected piece of evidence, not a usage error.
func TestVerifyCLIInputsAsUsersBringThem(t *testing.T) {
	t.Parallel()
	phala := readTDX(t, "teekit-phala-quote.dat")
	report, err := os.ReadFile(td("trustee-report.bin"))
	if err != nil {
		t.Fatal(err)
	}
	v6 := append([]byte(nil), phala...)
	v6[0] = 6 // a TDX quote header of a version trustgate does not know
	cases := []struct {
		name   string
		args   []string
		code   int
		want   string // in stdout
		stderr string
	}{
		{"0x hex TDX quote", append([]string{writeTemp(t, "q.hex", []byte("0x"+hex.EncodeToString(phala)))}, col2025("migtd-tcbinfo-b0c06f000000.json")...),
			exitOK, "VERIFIED", ""},
		{"0X hex TDX quote without collateral", []string{writeTemp(t, "q.hex", []byte("0X"+hex.EncodeToString(phala)+"\n")), "--no-collateral", "--at", "2025-11-20T00:00:00Z"},
			exitOK, "VERIFIED", ""},
		{"0x hex SNP report", atPinned([]string{writeTemp(t, "r.hex", []byte("0x"+hex.EncodeToString(report))), "--offline", "--no-revocation", "--vcek", td("trustee-vcek.der")}),
			exitOK, "VERIFIED", ""},
		{"SNP report followed by 20 bytes", atPinned([]string{writeTemp(t, "r.bin", append(append([]byte(nil), report...), make([]byte, 20)...)), "--offline", "--no-revocation", "--vcek", td("trustee-vcek.der")}),
			exitOK, "VERIFIED", "20 bytes after the report ignored"},
		{"empty file, --no-collateral", []string{writeTemp(t, "e", nil), "--no-collateral"}, exitRejected, "REJECTED: malformed_evidence", ""},
		{"random bytes, --collateral", []string{writeTemp(t, "r", bytes.Repeat([]byte{0xa5}, 3000)), "--collateral", tdxFile("migtd-qeidentity.json")},
			exitRejected, "REJECTED: malformed_evidence", ""},
		{"unknown quote version, --no-collateral", []string{writeTemp(t, "v6", v6), "--no-collateral"}, exitRejected, "REJECTED: unsupported_version", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(append([]string{"verify"}, tc.args...)...)
			if code != tc.code || !strings.Contains(out, tc.want) || !strings.Contains(errOut, tc.stderr) {
				t.Fatalf("exit %d, want %d and %q / %q\nstdout:\n%s\nstderr:\n%s", code, tc.code, tc.want, tc.stderr, out, errOut)
			}
		})
	}
}
