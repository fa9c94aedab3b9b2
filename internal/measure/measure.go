package measure

// Mode selects the launch flow to measure.
type Mode int

// The supported modes. The zero value is a plain SEV-SNP guest.
const (
	// ModeSNP: OVMF (optionally with a directly booted kernel) is the
	// first guest code (sev-snp-measure --mode snp).
	ModeSNP Mode = iota
	// ModeSVSM: a Coconut SVSM runs at VMPL0 below OVMF and starts first
	// (sev-snp-measure --mode snp:svsm). QEMU only.
	ModeSVSM
)

// fourGiB is where the VMM maps the end of the firmware flash.
const fourGiB = 1 << 32

// snpActive is SEV_FEATURES bit 0 (SNPActive), required for an SNP guest.
const snpActive = 0x1

// Options describe one guest launch. Byte slices are read, never kept or
// modified.
type Options struct {
	// Mode is the launch flow; the zero value is ModeSNP.
	Mode Mode
	// VCPUs is the number of vCPUs, at least 1: one VMSA page each.
	VCPUs int
	// VCPUSignature is the guest CPUID Fn0000_0001_EAX value (see
	// CPUSignature, VCPUTypeSignature). QEMU puts it in RDX of every VMSA,
	// so it is required for VMMQEMU; EC2 and GCE ignore it.
	VCPUSignature uint32
	// VMM is the monitor that launches the guest; the zero value is QEMU.
	VMM VMM
	// GuestFeatures is the VMSA SEV_FEATURES value (SEV-SNP ABI 56860,
	// "SEV_FEATURES"); 0 means 0x1 (SNPActive only). Bit 0 must be set.
	GuestFeatures uint64
	// OVMF is the whole OVMF image (OVMF.fd), mapped to end at 4 GiB. Its
	// SEV metadata and GUID table are always read.
	OVMF []byte
	// OVMFHash, if not nil, is the digest after the OVMF pages (see
	// OVMFHash) and replaces measuring them; the metadata still comes from
	// OVMF, so only its last pages are needed. ModeSNP only.
	OVMFHash *Digest
	// Boot, if not nil, is a directly booted kernel measured through the
	// SEV hashes table; nil means the guest boots from disk. ModeSNP only.
	Boot *DirectBoot
	// SVSM is the SVSM image (ModeSVSM only, required there).
	SVSM []byte
	// VarsSize is the size in bytes of the OVMF variable store mapped
	// between the SVSM and OVMF (ModeSVSM only; a multiple of 4096).
	VarsSize uint64
}

// OVMFHash returns the launch digest after the pages of the OVMF image
// alone: the value sev-snp-measure --mode snp:ovmf-hash prints, which
// Options.OVMFHash takes so the full image need not travel with every
// build.
func OVMFHash(ovmf []byte) (Digest, error) {
	fw, err := parseFirmware(ovmf, fourGiB, "OVMF", KindFirmware)
	if err != nil {
		return Digest{}, err
	}
	var c chain
	c.normalPages(fw.gpa, fw.data)
	return c.ld, nil
}

// LaunchDigest computes the SEV-SNP launch digest of the guest described by
// o. Every error is an *Error.
func LaunchDigest(o Options) (Digest, error) {
	if o.VCPUs < 1 {
		return Digest{}, errorf(KindInvalidOptions, "the number of vCPUs must be at least 1, got %d", o.VCPUs)
	}
	features := o.GuestFeatures
	if features == 0 {
		features = snpActive
	}
	if features&snpActive == 0 {
		return Digest{}, errorf(KindInvalidOptions, "guest features %#x lack bit 0 (SNPActive), required for SEV-SNP", features)
	}
	switch o.VMM {
	case VMMQEMU:
		if o.VCPUSignature == 0 {
			return Digest{}, errorf(KindInvalidOptions, "QEMU puts the vCPU signature in the VMSA: give a vCPU type or signature")
		}
	case VMMEC2, VMMGCE:
	default:
		return Digest{}, errorf(KindInvalidOptions, "unknown VMM %d", int(o.VMM))
	}
	switch o.Mode {
	case ModeSNP:
		return snpDigest(&o, features)
	case ModeSVSM:
		return svsmDigest(&o, features)
	}
	return Digest{}, errorf(KindInvalidOptions, "unknown mode %d", int(o.Mode))
}

// snpDigest measures OVMF, its metadata sections and the VMSAs.
func snpDigest(o *Options, features uint64) (Digest, error) {
	if o.SVSM != nil || o.VarsSize != 0 {
		return Digest{}, errorf(KindInvalidOptions, "an SVSM image and vars size belong to the SVSM mode")
	}
	fw, err := parseFirmware(o.OVMF, fourGiB, "OVMF", KindFirmware)
	if err != nil {
		return Digest{}, err
	}
	var c chain
	if o.OVMFHash != nil {
		c.ld = *o.OVMFHash
	} else {
		c.normalPages(fw.gpa, fw.data)
	}

	var hashes *[pageSize]byte
	if o.Boot != nil {
		tableGPA, ok := fw.u32Entry(guidHashTableRV)
		if !ok || tableGPA == 0 {
			return Digest{}, errorf(KindNoHashesTable, "a kernel was given but the OVMF image has no SEV hashes table: it cannot measure a directly booted kernel")
		}
		if !fw.hasSection(SectionSNPKernelHashes) {
			return Digest{}, errorf(KindNoHashesTable, "a kernel was given but the OVMF SEV metadata has no SNP_KERNEL_HASHES section")
		}
		if hashes, err = o.Boot.hashesPage(uint64(tableGPA) % pageSize); err != nil {
			return Digest{}, err
		}
	}
	if err := metadataPages(&c, fw, hashes, o.VMM); err != nil {
		return Digest{}, err
	}

	bsp := resetVMSA(bspEIP, features, o.VCPUSignature, o.VMM)
	var ap *vmsa
	if o.VCPUs > 1 {
		apEIP, ok := fw.u32Entry(guidSEVESReset)
		if !ok || apEIP == 0 {
			return Digest{}, errorf(KindFirmware, "the OVMF image has no SEV-ES AP reset block, so it cannot start more than one vCPU")
		}
		ap = resetVMSA(apEIP, features, o.VCPUSignature, o.VMM)
	}
	for i := range o.VCPUs {
		if i == 0 {
			c.vmsaPage((*[pageSize]byte)(bsp))
		} else {
			c.vmsaPage((*[pageSize]byte)(ap))
		}
	}
	return c.ld, nil
}

// metadataPages adds the SEV metadata sections of fw in their listed order,
// as the VMM does with SNP_LAUNCH_UPDATE. hashes, if not nil, is the kernel
// hashes page. EC2 adds the CPUID page after every other section; GCE adds
// the pre-validated SNP_SEC_MEM ranges as UNMEASURED pages, not ZERO pages.
func metadataPages(c *chain, fw *firmware, hashes *[pageSize]byte, vmm VMM) error {
	for _, s := range fw.sections {
		gpa, size := uint64(s.GPA), uint64(s.Size)
		switch s.Type {
		case SectionSNPSecMem:
			if vmm == VMMGCE {
				c.emptyPages(pageUnmeas, gpa, size)
			} else {
				c.emptyPages(pageZero, gpa, size)
			}
		case SectionSVSMCAA:
			c.emptyPages(pageZero, gpa, size)
		case SectionSNPSecrets:
			c.emptyPages(pageSecrets, gpa, pageSize)
		case SectionCPUID:
			if vmm != VMMEC2 {
				c.emptyPages(pageCPUID, gpa, pageSize)
			}
		case SectionSNPKernelHashes:
			if hashes == nil {
				c.emptyPages(pageZero, gpa, size)
				continue
			}
			if size != pageSize {
				return errorf(KindNoHashesTable, "SNP_KERNEL_HASHES section is %d bytes, want one page", size)
			}
			c.normalPages(gpa, hashes[:])
		}
	}
	if vmm == VMMEC2 {
		for _, s := range fw.sections {
			if s.Type == SectionCPUID {
				c.emptyPages(pageCPUID, uint64(s.GPA), pageSize)
			}
		}
	}
	return nil
}

// svsmDigest measures OVMF, the SVSM image below the OVMF variable store,
// the SVSM's metadata sections and the SVSM VMSAs.
func svsmDigest(o *Options, features uint64) (Digest, error) {
	if o.VMM != VMMQEMU {
		return Digest{}, errorf(KindInvalidOptions, "the SVSM mode is defined for QEMU only")
	}
	if o.Boot != nil || o.OVMFHash != nil {
		return Digest{}, errorf(KindInvalidOptions, "the SVSM mode takes neither a kernel nor a precomputed OVMF hash")
	}
	if len(o.SVSM) == 0 {
		return Digest{}, errorf(KindInvalidOptions, "the SVSM mode needs an SVSM image")
	}
	if o.VarsSize%pageSize != 0 {
		return Digest{}, errorf(KindInvalidOptions, "OVMF vars size %d is not a multiple of 4096", o.VarsSize)
	}
	ovmf, err := parseFirmware(o.OVMF, fourGiB, "OVMF", KindFirmware)
	if err != nil {
		return Digest{}, err
	}
	if o.VarsSize >= ovmf.gpa {
		return Digest{}, errorf(KindInvalidOptions, "OVMF vars size %d does not fit below OVMF", o.VarsSize)
	}
	svsm, err := parseFirmware(o.SVSM, ovmf.gpa-o.VarsSize, "SVSM", KindSVSM)
	if err != nil {
		return Digest{}, err
	}
	// The SVSM information entry holds the entry point as an offset from
	// the start of the SVSM image (Coconut SVSM stage 1 GUID table).
	entry, ok := svsm.u32Entry(guidSVSMInfo)
	if !ok {
		return Digest{}, errorf(KindSVSM, "the SVSM image has no SVSM information entry (GUID %s)", guidSVSMInfo)
	}
	eip := uint32(svsm.gpa) + entry
	var c chain
	c.normalPages(ovmf.gpa, ovmf.data)
	c.normalPages(svsm.gpa, svsm.data)
	if err := metadataPages(&c, svsm, nil, VMMQEMU); err != nil {
		return Digest{}, err
	}
	v := svsmVMSA(eip, o.VCPUSignature)
	for range o.VCPUs {
		c.vmsaPage((*[pageSize]byte)(v))
	}
	return c.ld, nil
}
