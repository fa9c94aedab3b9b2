package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

var snpData = filepath.Join("..", "..", "testdata", "snp")

func td(name string) string { return filepath.Join(snpData, name) }

func runCLI(args ...string) (code int, stdout, stderr string) {
	var o, e bytes.Buffer
	code = run(args, &o, &e)
	return code, o.String(), e.String()
}

func writeTemp(t *testing.T, name string, b []byte) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// pinnedAt is when real reports are verified unless a case says otherwise:
// inside the validity of every stored VCEK (latest notBefore 2026-06-28,
// earliest notAfter 2029-09-24), so the tests do not depend on the day
// they run.
const pinnedAt = "2026-11-01T00:00:00Z"

// atPinned adds --at pinnedAt to verify arguments that have no --at.
func atPinned(args []string) []string {
	if slices.Contains(args, "--at") {
		return args
	}
	return append(args, "--at", pinnedAt)
}

// Every real report verifies from the command line with its own key, as a
// new user would run it, and prints its claims after the verdict line.
func TestVerifyCLIRealReports(t *testing.T) {
	t.Parallel()
	cases := []struct {
		report, cert string
		extra        []string
		want         []string
	}{
		{"virtee-milan-report.hex", "virtee-milan-vcek.der", nil, []string{"product:          Milan", "measurement:       7a1e5c266c01"}},
		{"trustee-report.bin", "trustee-vcek.der", nil, []string{"guest_svn:         4", "reported_tcb:      bootloader=3 tee=0 snp=8 microcode=115"}},
		{"trustee-vlek-report.bin", "trustee-vlek.der", []string{"--at", "2024-12-11T00:00:00Z"}, []string{"signer:            vlek", "vmpl:              1"}},
		{"openanolis-trustee-vlek-report.bin", "openanolis-trustee-vlek.der", []string{"--at", "2024-05-06T00:00:00Z"}, []string{"signer:            vlek"}},
		{"trustee-azure-milan-hcl-report.bin", "trustee-azure-milan-vcek-chain.pem", nil, []string{"guest_svn:         5"}},
		{"trustee-azure-milan-v0-hcl-report.bin", "trustee-azure-milan-v0-vcek.pem", nil, []string{"report_version:    3"}},
		{"trustee-azure-genoa-hcl-report.bin", "trustee-azure-genoa-vcek.pem", nil, []string{"product:           Genoa"}},
		{"trustee-genoa-e2e-report.bin", "trustee-genoa-e2e-vcek.der", nil, []string{"product:           Genoa", "current_version:   1.55.40"}},
		{"teekit-gcp-milan-report.bin", "teekit-gcp-milan-vcek.pem", nil, []string{"report_version:    5"}},
		{"teekit-gcp-milan-reportdata-report.bin", "teekit-gcp-milan-vcek.pem", nil, []string{"report_data:       32fc4f6c"}},
		{"teekit-gcp-milan-x25519-report.bin", "teekit-gcp-milan-x25519-vcek.pem", nil, []string{"report_data:       3a6753fd"}},
		{"openanolis-trustee-turin-report.bin", "openanolis-trustee-turin-vcek.der", nil, []string{"product:           Turin", "reported_tcb:      fmc=1 bootloader=3 tee=2 snp=5 microcode=97", "iommu_write_safe=true"}},
		{"gosevguest-milan-report.bin", "gosevguest-milan-vcek.der", []string{"--allow-debug"}, []string{"debug=true"}},
	}
	for _, tc := range cases {
		t.Run(tc.report, func(t *testing.T) {
			t.Parallel()
			args := atPinned(append([]string{"verify", td(tc.report), "--offline", "--no-revocation", "--vcek", td(tc.cert)}, tc.extra...))
			code, out, errOut := runCLI(args...)
			if code != exitOK || !strings.HasPrefix(out, "VERIFIED\n") {
				t.Fatalf("exit %d, stdout:\n%s\nstderr:\n%s", code, out, errOut)
			}
			flat := strings.Join(strings.Fields(out), " ")
			for _, w := range tc.want {
				if !strings.Contains(flat, strings.Join(strings.Fields(w), " ")) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

func TestVerifyCLIRejections(t *testing.T) {
	t.Parallel()
	report, err := os.ReadFile(td("trustee-report.bin"))
	if err != nil {
		t.Fatal(err)
	}
	flipped := bytes.Clone(report)
	flipped[0x90] ^= 0x01 // first byte of MEASUREMENT
	rd := hex.EncodeToString(report[0x50:0x90])
	m := hex.EncodeToString(report[0x90:0xC0])
	other := strings.Repeat("ab", 48)
	key := td("trustee-vcek.der")

	cases := []struct {
		name   string
		args   []string
		code   int
		reason string
	}{
		{"byte flipped", []string{writeTemp(t, "r.bin", flipped), "--vcek", key}, exitRejected, "signature_invalid"},
		{"debug", []string{td("gosevguest-milan-report.bin"), "--vcek", td("gosevguest-milan-vcek.der")}, exitRejected, "debug_enabled"},
		{"wrong measurement", []string{td("trustee-report.bin"), "--vcek", key, "--measurement", other}, exitRejected, "measurement_mismatch"},
		{"wrong report data", []string{td("trustee-report.bin"), "--vcek", key, "--report-data", strings.Repeat("00", 64)}, exitRejected, "report_data_mismatch"},
		{"no key, offline", []string{td("trustee-report.bin")}, exitUnavailable, "vcek_unavailable"},
		{"VCEK of another chip", []string{td("trustee-report.bin"), "--vcek", td("virtee-milan-vcek.der")}, exitRejected, "signature_invalid"},
		{"expired VLEK", []string{td("trustee-vlek-report.bin"), "--vcek", td("trustee-vlek.der"), "--at", "2026-11-28T00:00:00Z"}, exitRejected, "cert_chain_invalid"},
		{"empty", []string{writeTemp(t, "e.bin", nil), "--vcek", key}, exitRejected, "malformed_evidence"},
		{"truncated", []string{writeTemp(t, "t.bin", report[:1000]), "--vcek", key}, exitRejected, "malformed_evidence"},
		{"oversized", []string{writeTemp(t, "o.bin", make([]byte, 1<<20)), "--vcek", key}, exitRejected, "malformed_evidence"},
		{"random text", []string{writeTemp(t, "x.txt", []byte("this is not an attestation report\n")), "--vcek", key}, exitRejected, "malformed_evidence"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			args := atPinned(append([]string{"verify", "--offline", "--no-revocation"}, tc.args...))
			code, out, _ := runCLI(args...)
			if code != tc.code || !strings.HasPrefix(out, "REJECTED: "+tc.reason+"\n") {
				t.Fatalf("exit %d, stdout:\n%s\nwant exit %d, REJECTED: %s", code, out, tc.code, tc.reason)
			}
		})
	}

	// The right expectations pass, which shows the two cases above fail
	// because of the value, not the flag.
	if code, out, _ := runCLI(atPinned([]string{"verify", "--offline", "--no-revocation", td("trustee-report.bin"), "--vcek", key, "--measurement", m, "--report-data", rd})...); code != exitOK {
		t.Fatalf("correct expectations: exit %d\n%s", code, out)
	}
}

// Revocation fails closed: offline with no AMD CRL cached or imported, a
// genuine report with its own VCEK is not verified, and --no-revocation
// (which warns) is the only way past that.
func TestVerifyCLIRevocationFailsClosed(t *testing.T) {
	t.Parallel()
	args := atPinned([]string{"verify", "--offline", td("trustee-report.bin"), "--vcek", td("trustee-vcek.der")})
	code, out, _ := runCLI(args...)
	if code != exitUnavailable || !strings.HasPrefix(out, "REJECTED: vcek_unavailable\n") || !strings.Contains(out, "revocation cannot be checked") {
		t.Fatalf("offline without a CRL: exit %d\n%s", code, out)
	}
	code, out, errOut := runCLI(append(args, "--no-revocation")...)
	if code != exitOK || !strings.Contains(errOut, "CRL is not checked") {
		t.Fatalf("--no-revocation: exit %d\n%s%s", code, out, errOut)
	}
}

func TestVerifyCLIFormatsAndJSON(t *testing.T) {
	t.Parallel()
	report, err := os.ReadFile(td("trustee-report.bin"))
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{
		"hex":    []byte(hex.EncodeToString(report) + "\n"),
		"base64": []byte(base64.StdEncoding.EncodeToString(report)),
	} {
		code, out, _ := runCLI(atPinned([]string{"verify", "--offline", "--no-revocation", "--json", writeTemp(t, name, b), "--vcek", td("trustee-vcek.der")})...)
		var got struct {
			Verdict string
			Claims  struct {
				Measurement string `json:"measurement"`
				Policy      struct {
					ABIMinor int `json:"abi_minor"`
				} `json:"policy"`
			}
		}
		if err := json.Unmarshal([]byte(out), &got); err != nil || code != exitOK {
			t.Fatalf("%s: exit %d, %v\n%s", name, code, err, out)
		}
		if got.Verdict != "VERIFIED" || got.Claims.Measurement != hex.EncodeToString(report[0x90:0xC0]) || got.Claims.Policy.ABIMinor != 31 {
			t.Errorf("%s: %+v", name, got)
		}
	}
}

func TestVerifyCLIUsageErrors(t *testing.T) {
	t.Parallel()
	for _, args := range [][]string{
		{"verify"},
		{"verify", "--no-such-flag", td("trustee-report.bin")},
		{"verify", filepath.Join(t.TempDir(), "missing.bin")},
		{"verify", td("trustee-report.bin"), "--measurement", "abcd"},
		{"verify", td("trustee-report.bin"), "--vcek", td("trustee-report.bin")},
		{"verify", td("trustee-report.bin"), "--at", "yesterday"},
		{"nonsense"},
	} {
		if code, _, _ := runCLI(args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}
