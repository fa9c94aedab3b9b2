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

	"github.com/trustgate/trustgate/internal/cli"
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

// measureFlags are the flags of "trustgate measure".
type measureFlags struct {
	mode, vcpuType, vcpuSig, vmmType               *string
	vcpus                                          *int
	vcpuFamily, vcpuModel, vcpuStepping            *uint
	ovmfPath, kernelPath, initrdPath, cmdline      *string
	features, ovmfHash, svsmPath, varsPath, format *string
	varsSize                                       *uint64
	verbose                                        bool
	rvPath, label, expires, resources, signKey     *string
	set                                            map[string]bool // the flags given
	stdout                                         io.Writer
}

func newMeasureFlags(fs *flag.FlagSet) *measureFlags {
	f := &measureFlags{
		mode:         fs.String("mode", "snp", "guest mode: snp, snp:ovmf-hash (print the OVMF hash for --snp-ovmf-hash) or snp:svsm"),
		vcpus:        fs.Int("vcpus", 0, "number of guest vCPUs (required)"),
		vcpuType:     fs.String("vcpu-type", "", "guest vCPU type: "+strings.Join(measure.VCPUTypes(), ", ")),
		vcpuSig:      fs.String("vcpu-sig", "", "guest vCPU signature, CPUID Fn0000_0001_EAX (decimal or 0x hex)"),
		vcpuFamily:   fs.Uint("vcpu-family", 0, "guest vCPU family (with --vcpu-model and --vcpu-stepping)"),
		vcpuModel:    fs.Uint("vcpu-model", 0, "guest vCPU model"),
		vcpuStepping: fs.Uint("vcpu-stepping", 0, "guest vCPU stepping"),
		vmmType:      fs.String("vmm-type", "QEMU", "VMM that launches the guest: QEMU, ec2 or gce"),
		ovmfPath:     fs.String("ovmf", "", "OVMF firmware image (required)"),
		kernelPath:   fs.String("kernel", "", "kernel booted directly (measured through the OVMF hashes table)"),
		initrdPath:   fs.String("initrd", "", "initrd (with --kernel)"),
		cmdline:      fs.String("append", "", "kernel command line (with --kernel)"),
		features:     fs.String("guest-features", "0x1", "SEV_FEATURES of the guest VMSA (decimal or 0x hex)"),
		ovmfHash:     fs.String("snp-ovmf-hash", "", "precomputed OVMF hash (hex, from --mode snp:ovmf-hash) instead of the OVMF pages"),
		svsmPath:     fs.String("svsm", "", "SVSM image (--mode snp:svsm)"),
		varsPath:     fs.String("vars-file", "", "OVMF variable store file; its size places the SVSM (--mode snp:svsm)"),
		varsSize:     fs.Uint64("vars-size", 0, "OVMF variable store size in bytes (--mode snp:svsm)"),
		format:       fs.String("output-format", "hex", "output format: hex or base64"),
	}
	fs.BoolVar(&f.verbose, "v", false, "print a sentence, not just the digest")
	fs.BoolVar(&f.verbose, "verbose", false, "same as -v")
	f.rvPath = fs.String("reference-values", "", "append the measurement to this reference-values file (.json, .yaml, .yml)")
	f.label = fs.String("label", "", "label of the appended measurement (required with --reference-values)")
	f.expires = fs.String("expires", "", "RFC 3339 time after which the appended measurement stops matching")
	f.resources = fs.String("resources", "", "comma-separated resources a guest of this build may receive")
	f.signKey = fs.String("sign-key", "", "after appending, sign the reference-values file with this P-256 key `FILE` (writes FILE.sig; see 'trustgate refvalues')")
	return f
}

// cmdMeasure implements "trustgate measure". Every failure is a usage error
// (exit 2) and prints no digest.
func cmdMeasure(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("measure", flag.ContinueOnError)
	cli.Conventions(fs, "trustgate measure", stdout, stderr, func(w io.Writer) {
		fmt.Fprint(w, measureUsage)
		fs.PrintDefaults()
	})
	f := newMeasureFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	f.set, f.stdout = map[string]bool{}, stdout
	fs.Visit(func(fl *flag.Flag) { f.set[fl.Name] = true })
	if err := f.run(fs, stdout, stderr); err != nil {
		fmt.Fprintf(stderr, "trustgate measure: %v\n", err)
		return exitUsage
	}
	return exitOK
}

// run checks the flags, computes and prints the measurement, and appends
// it to --reference-values if given.
func (f *measureFlags) run(fs *flag.FlagSet, stdout, stderr io.Writer) error {
	if fs.NArg() > 0 {
		return fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	o, err := f.options()
	if err != nil || o == nil { // nil: --mode snp:ovmf-hash, printed
		return err
	}
	if *f.format != "hex" && *f.format != "base64" {
		return fmt.Errorf("unknown --output-format %q (want hex or base64)", *f.format)
	}
	entry, err := f.entry()
	if err != nil {
		return err
	}
	var sk *ecdsa.PrivateKey
	if *f.signKey != "" {
		if sk, _, err = token.LoadOrGenerateKey(*f.signKey); err != nil {
			return fmt.Errorf("--sign-key: %w", err)
		}
	}
	d, err := measure.LaunchDigest(*o)
	if err != nil {
		return err
	}
	if entry != nil {
		entry.Value = d.String()
		if err := refvalues.Append(*f.rvPath, *entry); err != nil {
			return err
		}
		fmt.Fprintf(stderr, "trustgate measure: appended %q to %s\n", entry.Label, *f.rvPath)
		if sk != nil {
			s, err := signRefvaluesFile(sk, *f.rvPath, time.Now())
			if err != nil {
				return fmt.Errorf("signing %s (appended, not signed): %w", *f.rvPath, err)
			}
			fmt.Fprintf(stderr, "trustgate measure: signed %s as version %d\n", *f.rvPath+refvalues.SigSuffix, s.Version)
		}
	}
	out := d.String()
	if *f.format == "base64" {
		out = base64.StdEncoding.EncodeToString(d[:])
	}
	if f.verbose {
		name := "SEV_SNP"
		if o.Mode == measure.ModeSVSM {
			name = "SEV_SNP_SVSM"
		}
		fmt.Fprintf(stdout, "Calculated %s guest measurement: %s\n", name, out)
	} else {
		fmt.Fprintln(stdout, out)
	}
	return nil
}

// options builds the measurement's options from the flags. In --mode
// snp:ovmf-hash it prints the OVMF hash itself and returns nil options.
func (f *measureFlags) options() (*measure.Options, error) {
	var o measure.Options
	switch *f.mode {
	case "snp", "snp:ovmf-hash":
	case "snp:svsm":
		o.Mode = measure.ModeSVSM
	case "sev", "seves":
		return nil, fmt.Errorf("--mode %s is not supported: trustgate verifies SEV-SNP guests only", *f.mode)
	default:
		return nil, fmt.Errorf("unknown --mode %q (want snp, snp:ovmf-hash or snp:svsm)", *f.mode)
	}
	if *f.ovmfPath == "" {
		return nil, errors.New("--ovmf is required")
	}
	ovmf, err := os.ReadFile(*f.ovmfPath)
	if err != nil {
		return nil, fmt.Errorf("reading --ovmf: %w", err)
	}
	if *f.mode == "snp:ovmf-hash" {
		return nil, f.printOVMFHash(ovmf)
	}
	o.OVMF = ovmf

	if !f.set["vcpus"] {
		return nil, fmt.Errorf("--vcpus N is required in mode %s", *f.mode)
	}
	o.VCPUs = *f.vcpus
	if o.VMM, err = measure.ParseVMM(*f.vmmType); err != nil {
		return nil, err
	}
	if o.VCPUSignature, err = measureVCPUSig(f.set, *f.vcpuType, *f.vcpuSig, *f.vcpuFamily, *f.vcpuModel, *f.vcpuStepping); err != nil {
		return nil, err
	}
	if o.GuestFeatures, err = strconv.ParseUint(*f.features, 0, 64); err != nil {
		return nil, fmt.Errorf("--guest-features %q is not a number", *f.features)
	}
	if *f.ovmfHash != "" {
		d, err := measure.ParseDigest(strings.TrimPrefix(*f.ovmfHash, "0x"))
		if err != nil {
			return nil, fmt.Errorf("--snp-ovmf-hash: %w", err)
		}
		o.OVMFHash = &d
	}
	if o.Boot, err = f.directBoot(); err != nil {
		return nil, err
	}
	if err := f.svsm(&o); err != nil {
		return nil, err
	}
	return &o, nil
}

// printOVMFHash is --mode snp:ovmf-hash.
func (f *measureFlags) printOVMFHash(ovmf []byte) error {
	for _, name := range []string{"reference-values", "snp-ovmf-hash", "kernel", "svsm"} {
		if f.set[name] {
			return fmt.Errorf("--%s does not apply to --mode snp:ovmf-hash", name)
		}
	}
	h, err := measure.OVMFHash(ovmf)
	if err != nil {
		return err
	}
	fmt.Fprintln(f.stdout, h)
	return nil
}

// directBoot reads --kernel, --initrd and --append; nil without --kernel.
func (f *measureFlags) directBoot() (*measure.DirectBoot, error) {
	if (f.set["initrd"] || f.set["append"]) && *f.kernelPath == "" {
		return nil, errors.New("--initrd and --append need --kernel")
	}
	if *f.kernelPath == "" {
		return nil, nil
	}
	b := &measure.DirectBoot{Cmdline: *f.cmdline}
	var err error
	if b.Kernel, err = os.ReadFile(*f.kernelPath); err != nil {
		return nil, fmt.Errorf("reading --kernel: %w", err)
	}
	if *f.initrdPath != "" {
		if b.Initrd, err = os.ReadFile(*f.initrdPath); err != nil {
			return nil, fmt.Errorf("reading --initrd: %w", err)
		}
	}
	return b, nil
}

// svsm reads --svsm and the variable store's size in mode snp:svsm, and
// refuses them in the other modes.
func (f *measureFlags) svsm(o *measure.Options) error {
	if o.Mode != measure.ModeSVSM {
		for _, name := range []string{"svsm", "vars-file", "vars-size"} {
			if f.set[name] {
				return fmt.Errorf("--%s needs --mode snp:svsm", name)
			}
		}
		return nil
	}
	if *f.svsmPath == "" {
		return errors.New("--svsm is required in mode snp:svsm")
	}
	var err error
	if o.SVSM, err = os.ReadFile(*f.svsmPath); err != nil {
		return fmt.Errorf("reading --svsm: %w", err)
	}
	switch {
	case f.set["vars-file"] && f.set["vars-size"]:
		return errors.New("give --vars-file or --vars-size, not both")
	case f.set["vars-file"]:
		st, err := os.Stat(*f.varsPath)
		if err != nil {
			return fmt.Errorf("reading --vars-file: %w", err)
		}
		o.VarsSize = uint64(st.Size())
	case f.set["vars-size"]:
		o.VarsSize = *f.varsSize
	default:
		return errors.New("--vars-file or --vars-size is required in mode snp:svsm")
	}
	return nil
}

// entry is the reference-values entry to append (without its value), or
// nil without --reference-values.
func (f *measureFlags) entry() (*refvalues.Measurement, error) {
	if *f.rvPath != "" {
		return measureEntry(*f.label, *f.expires, *f.resources, time.Now())
	}
	for _, name := range []string{"label", "expires", "resources", "sign-key"} {
		if f.set[name] {
			return nil, fmt.Errorf("--%s needs --reference-values", name)
		}
	}
	return nil, nil
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
