package measure

import "encoding/binary"

// VMM is the virtual machine monitor that launches the guest. VMMs differ in
// the initial register state they put in the VMSA and in the order they add
// the CPUID page, so the same guest measures differently under each.
type VMM int

// The supported VMMs. The zero value is QEMU (with KVM).
const (
	VMMQEMU VMM = iota // QEMU/KVM
	VMMEC2             // Amazon EC2
	VMMGCE             // Google Compute Engine
)

// String returns the name sev-snp-measure uses for the VMM.
func (v VMM) String() string {
	switch v {
	case VMMQEMU:
		return "QEMU"
	case VMMEC2:
		return "ec2"
	case VMMGCE:
		return "gce"
	}
	return "unknown"
}

// ParseVMM parses a VMM name as sev-snp-measure's --vmm-type takes it
// ("QEMU", "ec2", "gce"; case-insensitive).
func ParseVMM(s string) (VMM, error) {
	switch s {
	case "QEMU", "qemu", "Qemu":
		return VMMQEMU, nil
	case "ec2", "EC2":
		return VMMEC2, nil
	case "gce", "GCE":
		return VMMGCE, nil
	}
	return 0, errorf(KindInvalidOptions, "unknown VMM type %q (want QEMU, ec2 or gce)", s)
}

// bspEIP is the x86 reset vector, where the bootstrap processor starts.
const bspEIP = 0xfffffff0

// Offsets in the VMSA (AMD64 APM vol. 2, table B-4 "VMSA layout, state
// save area for SEV-ES"). A segment register is selector u16, attributes
// u16, limit u32, base u64 (16 bytes).
const (
	vmsaES, vmsaCS, vmsaSS, vmsaDS, vmsaFS, vmsaGS = 0x000, 0x010, 0x020, 0x030, 0x040, 0x050
	vmsaGDTR, vmsaLDTR, vmsaIDTR, vmsaTR           = 0x060, 0x070, 0x080, 0x090
	vmsaEFER                                       = 0x0d0
	vmsaCR4, vmsaCR0, vmsaDR7, vmsaDR6             = 0x148, 0x158, 0x160, 0x168
	vmsaRFLAGS, vmsaRIP                            = 0x170, 0x178
	vmsaGPAT                                       = 0x268
	vmsaRDX                                        = 0x310
	vmsaSEVFeatures                                = 0x3b0
	vmsaXCR0                                       = 0x3e8
	vmsaMXCSR                                      = 0x408
	vmsaX87FCW                                     = 0x410
)

// Register values every VMM sets at reset (APM vol. 2, section 14.1.3
// "processor initialization state", plus what KVM enables on top).
const (
	resetEFER   = 0x1000          // EFER.SVME, set by KVM for SEV-ES guests
	resetCR4    = 0x40            // CR4.MCE, set by KVM
	resetCR0    = 0x10            // CR0.ET
	resetDR7    = 0x400           // DR7 reset value
	resetDR6    = 0xffff0ff0      // DR6 reset value
	resetRFLAGS = 0x2             // RFLAGS bit 1 is always 1
	resetGPAT   = 0x7040600070406 // PAT MSR reset value (APM vol. 2, section A.3)
	resetXCR0   = 0x1             // XCR0.X87
	resetMXCSR  = 0x1f80          // MXCSR reset value
	resetFCW    = 0x37f           // x87 FPU control word after FINIT
)

// vmsa is one VMSA page under construction.
type vmsa [pageSize]byte

func (v *vmsa) seg(off int, selector, attrib uint16, limit uint32, base uint64) {
	binary.LittleEndian.PutUint16(v[off:], selector)
	binary.LittleEndian.PutUint16(v[off+2:], attrib)
	binary.LittleEndian.PutUint32(v[off+4:], limit)
	binary.LittleEndian.PutUint64(v[off+8:], base)
}

func (v *vmsa) u64(off int, x uint64) { binary.LittleEndian.PutUint64(v[off:], x) }
func (v *vmsa) u32(off int, x uint32) { binary.LittleEndian.PutUint32(v[off:], x) }
func (v *vmsa) u16(off int, x uint16) { binary.LittleEndian.PutUint16(v[off:], x) }

// resetVMSA is the state of a vCPU at the x86 reset vector or, for an AP,
// at OVMF's SEV-ES AP reset address: real mode with CS:IP pointing at eip.
// The VMMs differ in segment attribute "accessed" bits, RDX (QEMU passes the
// guest's CPUID signature, as after a real reset; EC2 and GCE a fixed 0x600,
// family 6), the x87/SSE control state and the PAT.
func resetVMSA(eip uint32, features uint64, sig uint32, vmm VMM) *vmsa {
	csAttr, ssAttr, trAttr := uint16(0x9b), uint16(0x93), uint16(0x8b)
	rdx, mxcsr, fcw, gpat := uint64(sig), uint32(resetMXCSR), uint16(resetFCW), uint64(resetGPAT)
	switch vmm {
	case VMMEC2:
		if eip == bspEIP {
			csAttr = 0x9a
		}
		ssAttr, trAttr = 0x92, 0x83
		rdx, mxcsr, fcw = 0x600, 0, 0
	case VMMGCE:
		rdx, mxcsr, fcw = 0x600, 0, 0
		gpat = 0x70106
	}
	v := new(vmsa)
	v.seg(vmsaES, 0, 0x93, 0xffff, 0)
	v.seg(vmsaCS, 0xf000, csAttr, 0xffff, uint64(eip&0xffff0000))
	v.seg(vmsaSS, 0, ssAttr, 0xffff, 0)
	v.seg(vmsaDS, 0, 0x93, 0xffff, 0)
	v.seg(vmsaFS, 0, 0x93, 0xffff, 0)
	v.seg(vmsaGS, 0, 0x93, 0xffff, 0)
	v.seg(vmsaGDTR, 0, 0, 0xffff, 0)
	v.seg(vmsaLDTR, 0, 0x82, 0xffff, 0)
	v.seg(vmsaIDTR, 0, 0, 0xffff, 0)
	v.seg(vmsaTR, 0, trAttr, 0xffff, 0)
	v.u64(vmsaEFER, resetEFER)
	v.u64(vmsaCR4, resetCR4)
	v.u64(vmsaCR0, resetCR0)
	v.u64(vmsaDR7, resetDR7)
	v.u64(vmsaDR6, resetDR6)
	v.u64(vmsaRFLAGS, resetRFLAGS)
	v.u64(vmsaRIP, uint64(eip&0xffff))
	v.u64(vmsaGPAT, gpat)
	v.u64(vmsaRDX, rdx)
	v.u64(vmsaSEVFeatures, features)
	v.u64(vmsaXCR0, resetXCR0)
	v.u32(vmsaMXCSR, mxcsr)
	v.u16(vmsaX87FCW, fcw)
	return v
}

// svsmVMSA is the state QEMU gives every vCPU of an SVSM guest: 32-bit
// protected mode with flat 4 GiB code and data segments (selectors 8 and
// 16), CR0.PE set, starting at the SVSM entry point. SEV_FEATURES is
// SNPActive only: the SVSM enables further features itself.
func svsmVMSA(eip uint32, sig uint32) *vmsa {
	const features = snpActive
	v := new(vmsa)
	v.seg(vmsaES, 16, 0xc93, 0xffffffff, 0)
	v.seg(vmsaCS, 8, 0xc9b, 0xffffffff, 0)
	v.seg(vmsaSS, 16, 0xc93, 0xffffffff, 0)
	v.seg(vmsaDS, 16, 0xc93, 0xffffffff, 0)
	v.seg(vmsaFS, 16, 0xc93, 0xffffffff, 0)
	v.seg(vmsaGS, 0, 0x93, 0xffff, 0)
	v.seg(vmsaGDTR, 0, 0, 0xffff, 0)
	v.seg(vmsaLDTR, 0, 0x82, 0xffff, 0)
	v.seg(vmsaIDTR, 0, 0, 0xffff, 0)
	v.seg(vmsaTR, 0, 0x8b, 0xffff, 0)
	v.u64(vmsaEFER, resetEFER)
	v.u64(vmsaCR4, resetCR4)
	v.u64(vmsaCR0, resetCR0|0x1) // CR0.PE
	v.u64(vmsaDR7, resetDR7)
	v.u64(vmsaDR6, resetDR6)
	v.u64(vmsaRFLAGS, resetRFLAGS)
	v.u64(vmsaRIP, uint64(eip))
	v.u64(vmsaGPAT, resetGPAT)
	v.u64(vmsaRDX, uint64(sig))
	v.u64(vmsaSEVFeatures, features)
	v.u64(vmsaXCR0, resetXCR0)
	v.u32(vmsaMXCSR, resetMXCSR)
	// The x87 control word stays 0 here: QEMU's SVSM launch path sets MXCSR
	// but not FCW, and the published measurements depend on it.
	return v
}
