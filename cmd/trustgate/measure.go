package main

import (
	"crypto/ecdsa"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/trustgate/trustgate/internal/measure"
	"github.com/trustgate/trustgate/internal/refvalues"
	"github.com/trustgate/trustgate/internal/token"
)

// measureUsage is printed for -h and after a usage error.
const measureUsage = `usage: trustgate measure --mode snp|snp:ovmf-hash|snp:svsm --ovmf FILE [flags]

Prints the expected SEV-SNP launch measurement (48 bytes) of a guest; the
flags are those of sev-snp-measure. With --reference-values FILE --label L
the measurement is also appended to that reference-values file.

flags:
`

// cmdMeasure implements "trustgate measure". Every failure is a usage error
// (exit 2) and prints no digest.
func cmdMeasure(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("measure", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprint(stderr, measureUsage)
		fs.PrintDefaults()
	}
	mode := fs.String("mode", "snp", "guest mode: snp, snp:ovmf-hash (print the OVMF hash for --snp-ovmf-hash) or snp:svsm")
	vcpus := fs.Int("vcpus", 0, "number of guest vCPUs (required)")
	vcpuType := fs.String("vcpu-type", "", "guest vCPU type: "+strings.Join(measure.VCPUTypes(), ", "))
	vcpuSig := fs.String("vcpu-sig", "", "guest vCPU signature, CPUID Fn0000_0001_EAX (decimal or 0x hex)")
	vcpuFamily := fs.Uint("vcpu-family", 0, "guest vCPU family (with --vcpu-model and --vcpu-stepping)")
	vcpuModel := fs.Uint("vcpu-model", 0, "guest vCPU model")
	vcpuStepping := fs.Uint("vcpu-stepping", 0, "guest vCPU stepping")
	vmmType := fs.String("vmm-type", "QEMU", "VMM that launches the guest: QEMU, ec2 or gce")
	ovmfPath := fs.String("ovmf", "", "OVMF firmware image (required)")
	kernelPath := fs.String("kernel", "", "kernel booted directly (measured through the OVMF hashes table)")
	initrdPath := fs.String("initrd", "", "initrd (with --kernel)")
	cmdline := fs.String("append", "", "kernel command line (with --kernel)")
	features := fs.String("guest-features", "0x1", "SEV_FEATURES of the guest VMSA (decimal or 0x hex)")
	ovmfHash := fs.String("snp-ovmf-hash", "", "precomputed OVMF hash (hex, from --mode snp:ovmf-hash) instead of the OVMF pages")
	svsmPath := fs.String("svsm", "", "SVSM image (--mode snp:svsm)")
	varsPath := fs.String("vars-file", "", "OVMF variable store file; its size places the SVSM (--mode snp:svsm)")
	varsSize := fs.Uint64("vars-size", 0, "OVMF variable store size in bytes (--mode snp:svsm)")
	format := fs.String("output-format", "hex", "output format: hex or base64")
	var verbose bool
	fs.BoolVar(&verbose, "v", false, "print a sentence, not just the digest")
	fs.BoolVar(&verbose, "verbose", false, "same as -v")
	rvPath := fs.String("reference-values", "", "append the measurement to this reference-values file (.json, .yaml, .yml)")
	label := fs.String("label", "", "label of the appended measurement (required with --reference-values)")
	expires := fs.String("expires", "", "RFC 3339 time after which the appended measurement stops matching")
	resources := fs.String("resources", "", "comma-separated resources a guest of this build may receive")
	signKey := fs.String("sign-key", "", "after appending, sign the reference-values file with this P-256 key `FILE` (writes FILE.sig; see 'trustgate refvalues')")

	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	set := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { set[f.Name] = true })
	fail := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "trustgate measure: "+format+"\n", a...)
		return exitUsage
	}
	if fs.NArg() > 0 {
		return fail("unexpected argument %q", fs.Arg(0))
	}

	var o measure.Options
	switch *mode {
	case "snp", "snp:ovmf-hash":
	case "snp:svsm":
		o.Mode = measure.ModeSVSM
	case "sev", "seves":
		return fail("--mode %s is not supported: trustgate verifies SEV-SNP guests only", *mode)
	default:
		return fail("unknown --mode %q (want snp, snp:ovmf-hash or snp:svsm)", *mode)
	}
	if *ovmfPath == "" {
		return fail("--ovmf is required")
	}
	ovmf, err := os.ReadFile(*ovmfPath)
	if err != nil {
		return fail("reading --ovmf: %v", err)
	}
	if *mode == "snp:ovmf-hash" {
		for _, f := range []string{"reference-values", "snp-ovmf-hash", "kernel", "svsm"} {
			if set[f] {
				return fail("--%s does not apply to --mode snp:ovmf-hash", f)
			}
		}
		h, err := measure.OVMFHash(ovmf)
		if err != nil {
			return fail("%v", err)
		}
		fmt.Fprintln(stdout, h)
		return exitOK
	}
	o.OVMF = ovmf

	if !set["vcpus"] {
		return fail("--vcpus N is required in mode %s", *mode)
	}
	o.VCPUs = *vcpus
	if o.VMM, err = measure.ParseVMM(*vmmType); err != nil {
		return fail("%v", err)
	}
	if o.VCPUSignature, err = measureVCPUSig(set, *vcpuType, *vcpuSig, *vcpuFamily, *vcpuModel, *vcpuStepping); err != nil {
		return fail("%v", err)
	}
	if o.GuestFeatures, err = strconv.ParseUint(*features, 0, 64); err != nil {
		return fail("--guest-features %q is not a number", *features)
	}
	if *ovmfHash != "" {
		d, err := measure.ParseDigest(strings.TrimPrefix(*ovmfHash, "0x"))
		if err != nil {
			return fail("--snp-ovmf-hash: %v", err)
		}
		o.OVMFHash = &d
	}
	if set["initrd"] || set["append"] {
		if *kernelPath == "" {
			return fail("--initrd and --append need --kernel")
		}
	}
	if *kernelPath != "" {
		b := &measure.DirectBoot{Cmdline: *cmdline}
		if b.Kernel, err = os.ReadFile(*kernelPath); err != nil {
			return fail("reading --kernel: %v", err)
		}
		if *initrdPath != "" {
			if b.Initrd, err = os.ReadFile(*initrdPath); err != nil {
				return fail("reading --initrd: %v", err)
			}
		}
		o.Boot = b
	}
	if o.Mode == measure.ModeSVSM {
		if *svsmPath == "" {
			return fail("--svsm is required in mode snp:svsm")
		}
		if o.SVSM, err = os.ReadFile(*svsmPath); err != nil {
			return fail("reading --svsm: %v", err)
		}
		switch {
		case set["vars-file"] && set["vars-size"]:
			return fail("give --vars-file or --vars-size, not both")
		case set["vars-file"]:
			st, err := os.Stat(*varsPath)
			if err != nil {
				return fail("reading --vars-file: %v", err)
			}
			o.VarsSize = uint64(st.Size())
		case set["vars-size"]:
			o.VarsSize = *varsSize
		default:
			return fail("--vars-file or --vars-size is required in mode snp:svsm")
		}
	} else {
		for _, f := range []string{"svsm", "vars-file", "vars-size"} {
			if set[f] {
				return fail("--%s needs --mode snp:svsm", f)
			}
		}
	}
	if *format != "hex" && *format != "base64" {
		return fail("unknown --output-format %q (want hex or base64)", *format)
	}

	var entry *refvalues.Measurement
	var sk *ecdsa.PrivateKey
	if *rvPath != "" {
		if entry, err = measureEntry(*label, *expires, *resources, time.Now()); err != nil {
			return fail("%v", err)
		}
		if *signKey != "" {
			if sk, _, err = token.LoadOrGenerateKey(*signKey); err != nil {
				return fail("--sign-key: %v", err)
			}
		}
	} else {
		for _, f := range []string{"label", "expires", "resources", "sign-key"} {
			if set[f] {
				return fail("--%s needs --reference-values", f)
			}
		}
	}

	d, err := measure.LaunchDigest(o)
	if err != nil {
		return fail("%v", err)
	}
	if entry != nil {
		entry.Value = d.String()
		if err := refvalues.Append(*rvPath, *entry); err != nil {
			return fail("%v", err)
		}
		fmt.Fprintf(stderr, "trustgate measure: appended %q to %s\n", entry.Label, *rvPath)
		if sk != nil {
			if err := signRefvaluesFile(sk, *rvPath); err != nil {
				return fail("signing %s (appended, not signed): %v", *rvPath, err)
			}
			fmt.Fprintf(stderr, "trustgate measure: signed %s\n", *rvPath+refvalues.SigSuffix)
		}
	}
	out := d.String()
	if *format == "base64" {
		out = base64.StdEncoding.EncodeToString(d[:])
	}
	if verbose {
		name := "SEV_SNP"
		if o.Mode == measure.ModeSVSM {
			name = "SEV_SNP_SVSM"
		}
		fmt.Fprintf(stdout, "Calculated %s guest measurement: %s\n", name, out)
	} else {
		fmt.Fprintln(stdout, out)
	}
	return exitOK
}

// measureVCPUSig resolves the vCPU signature from exactly one of
// --vcpu-type, --vcpu-sig or --vcpu-family/--vcpu-model/--vcpu-stepping.
// None at all gives 0, which the library accepts for EC2 and GCE only.
func measureVCPUSig(set map[string]bool, name, sig string, family, model, stepping uint) (uint32, error) {
	byFMS := set["vcpu-family"] || set["vcpu-model"] || set["vcpu-stepping"]
	n := 0
	for _, b := range []bool{set["vcpu-type"], set["vcpu-sig"], byFMS} {
		if b {
			n++
		}
	}
	switch {
	case n > 1:
		return 0, errors.New("give only one of --vcpu-type, --vcpu-sig, --vcpu-family/--vcpu-model/--vcpu-stepping")
	case set["vcpu-type"]:
		return measure.VCPUTypeSignature(name)
	case set["vcpu-sig"]:
		v, err := strconv.ParseUint(sig, 0, 32)
		if err != nil || v == 0 {
			return 0, fmt.Errorf("--vcpu-sig %q is not a non-zero 32-bit number", sig)
		}
		return uint32(v), nil
	case byFMS:
		if !set["vcpu-family"] || !set["vcpu-model"] || !set["vcpu-stepping"] {
			return 0, errors.New("--vcpu-family, --vcpu-model and --vcpu-stepping go together")
		}
		if family == 0 || family > 0xf+0xff || model > 0xff || stepping > 0xf {
			return 0, fmt.Errorf("vCPU family %d, model %d, stepping %d out of range", family, model, stepping)
		}
		return measure.CPUSignature(uint32(family), uint32(model), uint32(stepping)), nil
	}
	return 0, nil
}

// measureEntry builds the reference-values entry (without its value) from
// --label, --expires and --resources.
func measureEntry(label, expires, resources string, now time.Time) (*refvalues.Measurement, error) {
	if strings.TrimSpace(label) == "" {
		return nil, errors.New("--label is required with --reference-values")
	}
	m := &refvalues.Measurement{Label: label}
	if expires != "" {
		t, err := time.Parse(time.RFC3339, expires)
		if err != nil {
			return nil, fmt.Errorf("--expires %q is not an RFC 3339 time (like 2027-01-01T00:00:00Z)", expires)
		}
		if !t.After(now) {
			return nil, fmt.Errorf("--expires %s is not in the future", expires)
		}
		t = t.UTC()
		m.Expires = &t
	}
	if resources != "" {
		for _, r := range strings.Split(resources, ",") {
			r = strings.TrimSpace(r)
			if r == "" {
				return nil, fmt.Errorf("--resources %q has an empty name", resources)
			}
			m.Resources = append(m.Resources, r)
		}
	}
	return m, nil
}
