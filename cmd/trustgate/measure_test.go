package main

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/refvalues"
)

const measureTestdata = "../../testdata/measure"

// fixture returns the path of a file in testdata/measure.
func fixture(name string) string { return filepath.Join(measureTestdata, name) }

// runMeasure runs the command function and returns exit code and output.
func runMeasure(args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := cmdMeasure(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// TestMeasureVectors feeds every SEV-SNP row of sev-snp-measure's vectors
// through the command line, spelled as a sev-snp-measure user would.
func TestMeasureVectors(t *testing.T) {
	t.Parallel()
	raw, err := os.ReadFile(fixture("sev-snp-measure-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	// The rows are read generically: kernel, initrd and the rest are
	// absent (null) when a vector does not use them.
	var wrap struct {
		Vectors []map[string]any `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &wrap); err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, r := range wrap.Vectors {
		mode := map[string]string{"SEV_SNP": "snp", "SEV_SNP_SVSM": "snp:svsm"}[r["mode"].(string)]
		if mode == "" {
			continue
		}
		n++
		args := []string{"--mode", mode, "--vcpus=" + jsonNum(r["vcpus"]), "--ovmf", fixture(r["ovmf"].(string)),
			"--guest-features", r["guest_features"].(string)}
		if vt := r["vcpu_type"].(string); vt != "None" {
			args = append(args, "--vcpu-type", vt)
		}
		if vmm := strings.Fields(r["vmm_type"].(string))[0]; vmm != "QEMU" {
			args = append(args, "--vmm-type="+vmm)
		}
		for _, k := range []string{"kernel", "initrd"} {
			if p, ok := r[k].(string); ok {
				if p != "/dev/null" {
					p = fixture(p)
				}
				args = append(args, "--"+k, p)
			}
		}
		if a, ok := r["append"].(string); ok && r["kernel"] != nil {
			args = append(args, "--append", a)
		}
		if h, ok := r["snp_ovmf_hash"].(string); ok {
			args = append(args, "--snp-ovmf-hash", h)
		}
		if s, ok := r["svsm"].(string); ok {
			args = append(args, "--svsm", fixture(s), "--vars-size", jsonNum(r["ovmf_vars_size"]))
		}
		want := r["expected_launch_digest"].(string)
		name := r["test"].(string)
		t.Run(name[strings.LastIndex(name, "::")+2:], func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runMeasure(args...)
			if code != exitOK || out != want+"\n" {
				t.Errorf("measure %q = %d, %q (stderr %q); want 0, %q", args, code, out, errOut, want)
			}
		})
	}
	if n != 18 {
		t.Errorf("%d SEV-SNP vectors, want 18", n)
	}
}

func jsonNum(v any) string { return strings.TrimSuffix(strings.TrimSuffix(jsonString(v), ".0"), "\n") }

func jsonString(v any) string { b, _ := json.Marshal(v); return string(b) }

func TestMeasureCLI(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	noMetadata := filepath.Join(dir, "plain.fd")
	if err := os.WriteFile(noMetadata, make([]byte, 8192), 0o644); err != nil {
		t.Fatal(err)
	}
	amd := fixture("ovmf_AmdSev_suffix.bin")
	base := []string{"--mode", "snp", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", amd}
	with := func(extra ...string) []string { return append(append([]string{}, base...), extra...) }
	const noKernel = "e1e1ca029dd7973ab9513295be68198472dcd4fc834bd9af9b63f6e8a1674dbf281a9278a4a2ebe0eed9f22adbcd0e2b"
	tests := []struct {
		name    string
		args    []string
		code    int
		stdout  string // exact, for exit 0
		errHave string // substring of stderr, for failures
	}{
		{name: "default guest features 0x1", args: with(), stdout: "19358ba9a7615534a9a1e2f0dfc29384dcd4dcb7062ff9c6013b26869a5fc6ecabe033c48dd6f6db5d6d76e7c5df632d\n"},
		{name: "guest features 0x21", args: with("--guest-features", "0x21"), stdout: noKernel + "\n"},
		{name: "equals form", args: []string{"--mode=snp", "--vcpus=1", "--vcpu-type=EPYC-v4", "--ovmf=" + amd, "--guest-features=0x21"}, stdout: noKernel + "\n"},
		{name: "vcpu-sig instead of type", args: []string{"--vcpus", "1", "--vcpu-sig", "0x800f12", "--ovmf", amd, "--guest-features", "33"}, stdout: noKernel + "\n"},
		{name: "family model stepping", args: []string{"--vcpus", "1", "--vcpu-family", "23", "--vcpu-model", "1", "--vcpu-stepping", "2", "--ovmf", amd, "--guest-features", "0x21"}, stdout: noKernel + "\n"},
		{name: "base64", args: with("--guest-features", "0x21", "--output-format", "base64"),
			stdout: "4eHKAp3Xlzq5UTKVvmgZhHLc1PyDS9mvm2P26KFnTb8oGpJ4pKLr4O7Z8irbzQ4r\n"},
		{name: "verbose", args: with("--guest-features", "0x21", "-v"), stdout: "Calculated SEV_SNP guest measurement: " + noKernel + "\n"},
		{name: "ovmf hash", args: []string{"--mode", "snp:ovmf-hash", "--ovmf", amd},
			stdout: "086e2e9149ebf45abdc3445fba5b2da8270bdbb04094d7a2c37faaa4b24af3aa16aff8c374c2a55c467a50da6d466b74\n"},
		{name: "help", args: []string{"-h"}, code: 0},

		{name: "OVMF without SNP metadata", args: []string{"--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", noMetadata}, code: 2, errHave: "OVMF footer GUID table"},
		{name: "OVMF hash of OVMF without metadata", args: []string{"--mode", "snp:ovmf-hash", "--ovmf", noMetadata}, code: 2, errHave: "OVMF"},
		{name: "unknown vCPU type", args: []string{"--vcpus", "1", "--vcpu-type", "EPYC-Zen9", "--ovmf", amd}, code: 2, errHave: `unknown vCPU type "EPYC-Zen9"`},
		{name: "zero vCPUs", args: []string{"--vcpus", "0", "--vcpu-type", "EPYC-v4", "--ovmf", amd}, code: 2, errHave: "at least 1"},
		{name: "missing vCPUs", args: []string{"--vcpu-type", "EPYC-v4", "--ovmf", amd}, code: 2, errHave: "--vcpus"},
		{name: "kernel without hashes table", args: []string{"--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", fixture("ovmf_OvmfX64_suffix.bin"), "--kernel", "/dev/null"}, code: 2, errHave: "hashes table"},
		{name: "QEMU without vCPU type", args: []string{"--vcpus", "1", "--ovmf", amd}, code: 2, errHave: "vCPU type"},
		{name: "two vCPU selectors", args: with("--vcpu-sig", "0x800f12"), code: 2, errHave: "only one"},
		{name: "missing OVMF", args: []string{"--vcpus", "1", "--vcpu-type", "EPYC-v4"}, code: 2, errHave: "--ovmf"},
		{name: "unreadable OVMF", args: []string{"--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", filepath.Join(dir, "nope.fd")}, code: 2, errHave: "reading --ovmf"},
		{name: "SEV mode", args: []string{"--mode", "sev", "--ovmf", amd}, code: 2, errHave: "not supported"},
		{name: "unknown mode", args: []string{"--mode", "tdx", "--ovmf", amd}, code: 2, errHave: "unknown --mode"},
		{name: "unknown VMM", args: with("--vmm-type", "azure"), code: 2, errHave: "unknown VMM"},
		{name: "append without kernel", args: with("--append", "quiet"), code: 2, errHave: "need --kernel"},
		{name: "bad OVMF hash", args: with("--snp-ovmf-hash", "abcd"), code: 2, errHave: "--snp-ovmf-hash"},
		{name: "bad output format", args: with("--output-format", "raw"), code: 2, errHave: "output-format"},
		{name: "SVSM without vars", args: []string{"--mode", "snp:svsm", "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", amd, "--svsm", amd}, code: 2, errHave: "--vars"},
		{name: "label without file", args: with("--label", "x"), code: 2, errHave: "needs --reference-values"},
		{name: "positional argument", args: with("extra"), code: 2, errHave: "unexpected argument"},
		{name: "unknown flag", args: with("--dump-vmsa"), code: 2, errHave: "dump-vmsa"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runMeasure(tc.args...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d (stdout %q, stderr %q)", code, tc.code, out, errOut)
			}
			if tc.code != 0 {
				if out != "" {
					t.Errorf("a failure printed %q on stdout", out)
				}
				if !strings.Contains(errOut, tc.errHave) {
					t.Errorf("stderr %q lacks %q", errOut, tc.errHave)
				}
				return
			}
			if tc.stdout != "" && out != tc.stdout {
				t.Errorf("stdout %q, want %q", out, tc.stdout)
			}
		})
	}
}

// TestMeasureReferenceValues runs the CI step: compute and append, then
// refuse a second build with the same label and bad expiries.
func TestMeasureReferenceValues(t *testing.T) {
	t.Parallel()
	const existing = `# approved builds
measurements:
  - value: "5da7106cf14cf46b1725ebab123eb9e53bd46a1e9f400cd0c08e7827b04b688ea8b4e403c8404efed4397ea5d5d0722e"
    label: build-1 # on GCE
allowed_vmpl: [0]
`
	const digest = "e1e1ca029dd7973ab9513295be68198472dcd4fc834bd9af9b63f6e8a1674dbf281a9278a4a2ebe0eed9f22adbcd0e2b"
	measureArgs := []string{"--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", fixture("ovmf_AmdSev_suffix.bin"), "--guest-features", "0x21"}
	tests := []struct {
		name    string
		file    string
		extra   []string
		code    int
		errHave string
		labels  []string // labels in the file afterwards, in order
	}{
		{name: "append to YAML", file: "rv.yaml", extra: []string{"--label", "build-2", "--expires", "2999-01-01T00:00:00Z", "--resources", "db-password, api-key"},
			labels: []string{"build-1", "build-2"}},
		{name: "create JSON", file: "new.json", extra: []string{"--label", "build-2"}, labels: []string{"build-2"}},
		{name: "duplicate label", file: "rv.yaml", extra: []string{"--label", "build-1"}, code: 2, errHave: "already have", labels: []string{"build-1"}},
		{name: "malformed expiry", file: "rv.yaml", extra: []string{"--label", "build-3", "--expires", "next year"}, code: 2, errHave: "RFC 3339", labels: []string{"build-1"}},
		{name: "expiry in the past", file: "rv.yaml", extra: []string{"--label", "build-3", "--expires", "2001-01-01T00:00:00Z"}, code: 2, errHave: "future", labels: []string{"build-1"}},
		{name: "missing label", file: "rv.yaml", code: 2, errHave: "--label is required", labels: []string{"build-1"}},
		{name: "empty resource", file: "rv.yaml", extra: []string{"--label", "b", "--resources", "a,,b"}, code: 2, errHave: "empty name", labels: []string{"build-1"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), tc.file)
			if strings.HasSuffix(tc.file, ".yaml") {
				if err := os.WriteFile(path, []byte(existing), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			args := append(append([]string{}, measureArgs...), "--reference-values", path)
			code, out, errOut := runMeasure(append(args, tc.extra...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d (stderr %q)", code, tc.code, errOut)
			}
			if code == 0 && out != digest+"\n" {
				t.Errorf("stdout %q, want the digest", out)
			}
			if code != 0 && (out != "" || !strings.Contains(errOut, tc.errHave)) {
				t.Errorf("stdout %q, stderr %q; want nothing and %q", out, errOut, tc.errHave)
			}
			s, err := refvalues.Load(path)
			if err != nil {
				t.Fatalf("Load: %v", err)
			}
			var labels []string
			for _, m := range s.Measurements {
				labels = append(labels, m.Label)
			}
			if strings.Join(labels, ",") != strings.Join(tc.labels, ",") {
				t.Errorf("labels %v, want %v", labels, tc.labels)
			}
			if code == 0 {
				last := s.Measurements[len(s.Measurements)-1]
				if last.Value != digest {
					t.Errorf("appended value %s, want %s", last.Value, digest)
				}
				raw, _ := os.ReadFile(path)
				if strings.HasSuffix(tc.file, ".yaml") && (!strings.Contains(string(raw), "# approved builds") || !strings.Contains(string(raw), "# on GCE")) {
					t.Errorf("comments lost:\n%s", raw)
				}
			}
		})
	}
}
