package measure

import (
	"sort"
	"strings"
)

// CPUSignature returns the CPUID Fn0000_0001_EAX value (family, model,
// stepping identifiers; AMD CPUID specification 25481) for a family, model
// and stepping given as the combined values (e.g. family 0x19 = 25, model
// 0x11 = 17 for Genoa). A family above 0xF is encoded as base family 0xF
// plus extended family (family - 0xF); the model is split into base
// (bits 7:4) and extended model (bits 19:16).
func CPUSignature(family, model, stepping uint32) uint32 {
	baseFamily, extFamily := family, uint32(0)
	if family > 0xf {
		baseFamily, extFamily = 0xf, (family-0xf)&0xff
	}
	return extFamily<<20 | (model>>4&0xf)<<16 | baseFamily<<8 | (model&0xf)<<4 | stepping&0xf
}

// fms is a family/model/stepping triple.
type fms struct{ family, model, stepping uint32 }

// vcpuTypes lists QEMU's named AMD EPYC CPU models (target/i386/cpu.c,
// builtin_x86_defs) with their family, model and stepping. QEMU's versioned
// names (-vN) change features only, never family/model/stepping.
func vcpuTypes() map[string]fms {
	naples := fms{23, 1, 2} // EPYC (Zen): family 17h model 01h stepping 2
	rome := fms{23, 49, 0}  // EPYC-Rome (Zen 2): family 17h model 31h
	milan := fms{25, 1, 1}  // EPYC-Milan (Zen 3): family 19h model 01h stepping 1
	genoa := fms{25, 17, 0} // EPYC-Genoa (Zen 4): family 19h model 11h
	turin := fms{26, 0, 0}  // EPYC-Turin (Zen 5): family 1Ah model 00h
	return map[string]fms{
		"EPYC": naples, "EPYC-IBPB": naples,
		"EPYC-v1": naples, "EPYC-v2": naples, "EPYC-v3": naples, "EPYC-v4": naples, "EPYC-v5": naples,
		"EPYC-Rome": rome, "EPYC-Rome-v1": rome, "EPYC-Rome-v2": rome, "EPYC-Rome-v3": rome,
		"EPYC-Rome-v4": rome, "EPYC-Rome-v5": rome,
		"EPYC-Milan": milan, "EPYC-Milan-v1": milan, "EPYC-Milan-v2": milan, "EPYC-Milan-v3": milan,
		"EPYC-Genoa": genoa, "EPYC-Genoa-v1": genoa, "EPYC-Genoa-v2": genoa,
		"EPYC-Turin": turin, "EPYC-Turin-v1": turin,
	}
}

// VCPUTypes returns the known vCPU type names, sorted.
func VCPUTypes() []string {
	m := vcpuTypes()
	names := make([]string, 0, len(m))
	for n := range m {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// VCPUTypeSignature returns the CPUID signature of a named QEMU vCPU type
// (e.g. "EPYC-Milan-v2"). Names match exactly, as QEMU's do.
func VCPUTypeSignature(name string) (uint32, error) {
	t, ok := vcpuTypes()[name]
	if !ok {
		return 0, errorf(KindInvalidOptions, "unknown vCPU type %q (known: %s)", name, strings.Join(VCPUTypes(), ", "))
	}
	return CPUSignature(t.family, t.model, t.stepping), nil
}
