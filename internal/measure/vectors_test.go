package measure

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

const testdataDir = "../../testdata/measure"

// vector is one row of sev-snp-measure-vectors.json.
type vector struct {
	Test          string  `json:"test"`
	Mode          string  `json:"mode"`
	VCPUs         int     `json:"vcpus"`
	VCPUType      string  `json:"vcpu_type"`
	OVMF          string  `json:"ovmf"`
	Kernel        *string `json:"kernel"`
	Initrd        *string `json:"initrd"`
	Append        *string `json:"append"`
	GuestFeatures string  `json:"guest_features"`
	VMMType       string  `json:"vmm_type"`
	SNPOVMFHash   *string `json:"snp_ovmf_hash"`
	SVSM          *string `json:"svsm"`
	VarsSize      *uint64 `json:"ovmf_vars_size"`
	Expected      string  `json:"expected_launch_digest"`
}

func loadVectors(t testing.TB) []vector {
	t.Helper()
	raw, err := os.ReadFile(filepath.Join(testdataDir, "sev-snp-measure-vectors.json"))
	if err != nil {
		t.Fatal(err)
	}
	var f struct {
		Vectors []vector `json:"vectors"`
	}
	if err := json.Unmarshal(raw, &f); err != nil {
		t.Fatal(err)
	}
	return f.Vectors
}

// readFixture reads a test input once per test; "/dev/null" is empty input.
func readFixture(t testing.TB, name string) []byte {
	t.Helper()
	if name == "/dev/null" {
		return []byte{}
	}
	b, err := os.ReadFile(filepath.Join(testdataDir, name))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// vectorOptions turns a row into Options; ok is false for SEV/SEV-ES rows.
func vectorOptions(t testing.TB, v vector) (Options, bool) {
	t.Helper()
	var o Options
	switch v.Mode {
	case "SEV_SNP":
		o.Mode = ModeSNP
	case "SEV_SNP_SVSM":
		o.Mode = ModeSVSM
	default:
		return o, false
	}
	o.VCPUs = v.VCPUs
	vmm, err := ParseVMM(strings.Fields(v.VMMType)[0])
	if err != nil {
		t.Fatal(err)
	}
	o.VMM = vmm
	if v.VCPUType != "None" {
		if o.VCPUSignature, err = VCPUTypeSignature(v.VCPUType); err != nil {
			t.Fatal(err)
		}
	}
	if o.GuestFeatures, err = strconv.ParseUint(v.GuestFeatures, 0, 64); err != nil {
		t.Fatal(err)
	}
	o.OVMF = readFixture(t, v.OVMF)
	if v.Kernel != nil {
		o.Boot = &DirectBoot{Kernel: readFixture(t, *v.Kernel)}
		if v.Initrd != nil {
			o.Boot.Initrd = readFixture(t, *v.Initrd)
		}
		if v.Append != nil {
			o.Boot.Cmdline = *v.Append
		}
	}
	if v.SNPOVMFHash != nil {
		d, err := ParseDigest(*v.SNPOVMFHash)
		if err != nil {
			t.Fatal(err)
		}
		o.OVMFHash = &d
	}
	if v.SVSM != nil {
		o.SVSM = readFixture(t, *v.SVSM)
	}
	if v.VarsSize != nil {
		o.VarsSize = *v.VarsSize
	}
	return o, true
}

// TestLaunchDigestVectors reproduces every SEV-SNP vector of sev-snp-measure
// byte for byte (the SEV and SEV-ES rows are out of scope).
func TestLaunchDigestVectors(t *testing.T) {
	t.Parallel()
	n := 0
	for _, v := range loadVectors(t) {
		if v.Mode != "SEV_SNP" && v.Mode != "SEV_SNP_SVSM" {
			continue
		}
		n++
		t.Run(v.Test[strings.LastIndex(v.Test, "::")+2:], func(t *testing.T) {
			t.Parallel()
			o, _ := vectorOptions(t, v)
			got, err := LaunchDigest(o)
			if err != nil {
				t.Fatalf("LaunchDigest: %v", err)
			}
			if got.String() != v.Expected {
				t.Errorf("digest\n got %s\nwant %s", got, v.Expected)
			}
		})
	}
	if n != 18 {
		t.Errorf("found %d SEV-SNP vectors, want 18", n)
	}
}
