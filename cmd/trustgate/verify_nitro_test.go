package main

import (
	"encoding/base64"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

var nitroData = filepath.Join("..", "..", "testdata", "nitro")

// The real documents' times (testdata/nitro/SOURCES.md).
const (
	nitroAt      = "2024-09-07T14:37:40Z"
	nitroDebugAt = "2024-09-07T14:38:07Z"
	nitroPCR0    = "e72a46ca80a260fb044a125442f0c7e331813bcbaf9724d9f3857758992766f2d65710a27aa94ae3949dd54e7c9fe86a"
)

// `trustgate verify` recognises a Nitro attestation document in each of
// its forms and judges it as SPEC "AWS Nitro Enclaves" says.
func TestVerifyCLINitro(t *testing.T) {
	t.Parallel()
	b64File := filepath.Join(nitroData, "blocky-nitro-attestation.b64")
	b64, err := os.ReadFile(b64File)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.TrimSpace(string(b64)))
	if err != nil {
		t.Fatal(err)
	}
	rawFile := writeTemp(t, "doc.cbor", raw)
	jsonFile := writeTemp(t, "ev.json", []byte(`{"document": "`+strings.TrimSpace(string(b64))+`"}`))
	rd := strings.Repeat("01", 1024)
	nonce := nitroNonce(t, b64File) // the real document's 1024-byte nonce, as --json prints it
	otherNonce := nonce[:len(nonce)-2] + "ff"
	if otherNonce == nonce {
		otherNonce = nonce[:len(nonce)-2] + "fe"
	}
	const pcr1 = "0343b056cd8485ca7890ddd833476d78460aed2aa161548e4e26bedf321726696257d623e8805f3f605946b3d8b0c6aa"
	refs := func(pin string) string {
		return writeTemp(t, "ref-"+pin[:4]+".yaml", []byte("measurements:\n  - tee: nitro\n    value: \""+nitroPCR0+"\"\n    label: blocky\n    pcrs:\n      pcr1: \""+pin+"\"\n"))
	}
	cases := []struct {
		name   string
		args   []string
		code   int
		want   []string
		stderr string
	}{
		{"base64", []string{b64File, "--at", nitroAt}, exitOK, []string{"VERIFIED", "tee:               nitro", "pcr0:              " + nitroPCR0, "digest:            SHA384"}, ""},
		{"raw CBOR", []string{rawFile, "--at", nitroAt}, exitOK, []string{"VERIFIED", "module_id:         i-0a22e5c5f24d22174-enc0191cceb4289903f"}, ""},
		{"JSON evidence", []string{jsonFile, "--at", nitroAt}, exitOK, []string{"VERIFIED"}, ""},
		{"expected PCR0", []string{b64File, "--at", nitroAt, "--measurement", nitroPCR0}, exitOK, []string{"VERIFIED"}, ""},
		{"other PCR0", []string{b64File, "--at", nitroAt, "--measurement", strings.Repeat("00", 48)}, exitRejected, []string{"REJECTED: measurement_mismatch"}, ""},
		{"the document's whole nonce (1024 bytes) as REPORT_DATA", []string{b64File, "--at", nitroAt, "--report-data", nonce}, exitOK, []string{"VERIFIED"}, ""},
		{"its last byte changed", []string{b64File, "--at", nitroAt, "--report-data", otherNonce}, exitRejected, []string{"REJECTED: report_data_mismatch"}, ""},
		{"nonce is not REPORT_DATA", []string{b64File, "--at", nitroAt, "--report-data", rd[:128]}, exitRejected, []string{"REJECTED: report_data_mismatch"}, ""},
		{"default policy, PCR0 and PCR1 pinned", []string{b64File, "--at", nitroAt, "--data", refs(pcr1)}, exitOK, []string{"VERIFIED", "allow (label blocky)"}, ""},
		{"default policy, another PCR1", []string{b64File, "--at", nitroAt, "--data", refs("1" + pcr1[1:])}, exitRejected, []string{"REJECTED: measurement_mismatch"}, ""},
		{"today: the leaf expired", []string{b64File}, exitRejected, []string{"REJECTED: cert_chain_invalid"}, ""},
		{"debug mode", []string{filepath.Join(nitroData, "blocky-nitro-attestation-debug.b64"), "--at", nitroDebugAt}, exitRejected, []string{"REJECTED: debug_enabled"}, ""},
		{"debug mode allowed", []string{filepath.Join(nitroData, "blocky-nitro-attestation-debug.b64"), "--at", nitroDebugAt, "--allow-debug"}, exitOK,
			[]string{"VERIFIED", "pcr0:              " + strings.Repeat("00", 48)}, ""},
		{"TDX flag", []string{b64File, "--at", nitroAt, "--no-collateral"}, exitUsage, nil, "--no-collateral: not for Nitro"},
		{"SEV-SNP flag", []string{b64File, "--at", nitroAt, "--vcek", b64File}, exitUsage, nil, "--vcek: not for Nitro"},
		{"bad --at", []string{b64File, "--at", "yesterday"}, exitUsage, nil, "--at"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(append([]string{"verify"}, c.args...)...)
			if code != c.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, c.code, out, errOut)
			}
			for _, w := range c.want {
				if !strings.Contains(out, w) {
					t.Errorf("stdout lacks %q:\n%s", w, out)
				}
			}
			if c.stderr != "" && !strings.Contains(errOut, c.stderr) {
				t.Errorf("stderr lacks %q:\n%s", c.stderr, errOut)
			}
		})
	}
}

func TestVerifyCLINitroJSON(t *testing.T) {
	t.Parallel()
	code, out, errOut := runCLI("verify", filepath.Join(nitroData, "blocky-nitro-attestation.b64"), "--at", nitroAt, "--json")
	if code != exitOK {
		t.Fatalf("exit %d: %s %s", code, out, errOut)
	}
	var v struct {
		Verdict string         `json:"verdict"`
		Claims  map[string]any `json:"claims"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	if v.Verdict != "VERIFIED" || v.Claims["tee"] != "nitro" || v.Claims["pcr0"] != nitroPCR0 || v.Claims["timestamp"] != float64(1725719859545) ||
		v.Claims["report_data"] != strings.Repeat("01", 1024) || v.Claims["pcr15"] == nil || v.Claims["pcr16"] != nil {
		t.Fatalf("%s", out)
	}
}

// nitroNonce is the nonce of the document in file, hex, read from
// `verify --json`.
func nitroNonce(t *testing.T, file string) string {
	t.Helper()
	code, out, errOut := runCLI("verify", file, "--at", nitroAt, "--json")
	if code != exitOK {
		t.Fatalf("verify --json: exit %d: %s", code, errOut)
	}
	var v struct {
		Claims struct {
			ReportData string `json:"report_data"`
		} `json:"claims"`
	}
	if err := json.Unmarshal([]byte(out), &v); err != nil || len(v.Claims.ReportData) != 2048 {
		t.Fatalf("verify --json: %v, report_data of %d hex digits:\n%s", err, len(v.Claims.ReportData), out)
	}
	return v.Claims.ReportData
}
