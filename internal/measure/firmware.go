package measure

import (
	"encoding/binary"
	"encoding/hex"
	"strings"
)

// GUIDs of the OVMF footer GUID table (OvmfPkg/ResetVector, "OVMF GUIDed
// structure table") and of the entries this package reads. A GUID is stored
// in EFI byte order: the first three fields little-endian.
const (
	guidTableFooter  = "96b582de-1fb2-45f7-baea-a366c55a082d" // end of the table
	guidSEVMetadata  = "dc886566-984a-4798-a75e-5585a7bf67cc" // u32 offset from image end to "ASEV" metadata
	guidHashTableRV  = "7255371f-3a3b-4b04-927b-1da6efa8d454" // u32 GPA, u32 size of the SEV hashes table
	guidSEVESReset   = "00f771de-1a7e-4fcb-890e-68c77e2fb44e" // u32 AP reset EIP
	guidSVSMInfo     = "a789a612-0597-4c4b-a49f-cbb1fe9d1ddd" // u32 SVSM entry offset from the image start
	sevMetadataMagic = "ASEV"
)

// SectionType is the type of one OVMF SEV metadata section (OVMF
// OvmfPkg/ResetVector "SEV metadata" descriptor types).
type SectionType uint32

// The SEV metadata section types.
const (
	SectionSNPSecMem       SectionType = 1    // pre-validated memory: ZERO pages
	SectionSNPSecrets      SectionType = 2    // SNP secrets page
	SectionCPUID           SectionType = 3    // SNP CPUID page
	SectionSVSMCAA         SectionType = 4    // SVSM calling area: ZERO pages
	SectionSNPKernelHashes SectionType = 0x10 // kernel hashes page
)

// Section is one entry of the SEV metadata: a GPA range and how the VMM
// adds it at launch.
type Section struct {
	GPA  uint32
	Size uint32
	Type SectionType
}

// firmware is a parsed OVMF (or SVSM) image placed in guest memory.
type firmware struct {
	data     []byte
	gpa      uint64              // guest physical address of data[0]
	table    map[[16]byte][]byte // footer GUID table: GUID -> entry payload
	sections []Section
}

// guidBytes converts a canonical GUID string to its EFI byte layout. The
// inputs are the package's own constants, so a malformed one is a bug.
func guidBytes(s string) [16]byte {
	var g [16]byte
	raw, err := hex.DecodeString(strings.ReplaceAll(s, "-", ""))
	if err != nil || len(raw) != 16 {
		panic("measure: malformed GUID constant " + s)
	}
	// EFI_GUID: Data1 u32, Data2 u16, Data3 u16 little-endian, Data4 as is.
	g[0], g[1], g[2], g[3] = raw[3], raw[2], raw[1], raw[0]
	g[4], g[5] = raw[5], raw[4]
	g[6], g[7] = raw[7], raw[6]
	copy(g[8:], raw[8:])
	return g
}

// parseFirmware parses the footer GUID table and the SEV metadata of image,
// which the VMM maps so that it ends at endGPA. what names the image in
// errors ("OVMF", "SVSM"); kind is the error kind to report.
func parseFirmware(image []byte, endGPA uint64, what string, kind Kind) (*firmware, error) {
	if len(image) == 0 || len(image)%pageSize != 0 {
		return nil, errorf(kind, "%s image size %d is not a non-zero multiple of 4096 bytes", what, len(image))
	}
	if uint64(len(image)) > endGPA {
		return nil, errorf(kind, "%s image (%d bytes) does not fit below GPA %#x", what, len(image), endGPA)
	}
	fw := &firmware{data: image, gpa: endGPA - uint64(len(image)), table: map[[16]byte][]byte{}}
	if err := fw.parseTable(what, kind); err != nil {
		return nil, err
	}
	if err := fw.parseMetadata(what, kind); err != nil {
		return nil, err
	}
	return fw, nil
}

// parseTable reads the GUIDed structure table that ends 32 bytes before the
// end of the image. Each entry is laid out as payload, u16 length (of the
// whole entry), GUID; the table is walked backwards from the footer entry,
// whose length covers the whole table.
func (fw *firmware) parseTable(what string, kind Kind) error {
	const entryHeader = 2 + 16 // u16 length + GUID
	end := len(fw.data) - 32
	if end < entryHeader {
		return errorf(kind, "%s image too small for a GUID table", what)
	}
	footer := fw.data[end-entryHeader : end]
	if [16]byte(footer[2:]) != guidBytes(guidTableFooter) {
		return errorf(kind, "%s image has no OVMF footer GUID table (not an OVMF build with SEV support?)", what)
	}
	tableLen := int(binary.LittleEndian.Uint16(footer[:2]))
	if tableLen < entryHeader || tableLen > end {
		return errorf(kind, "%s footer GUID table length %d is out of range", what, tableLen)
	}
	start := end - tableLen
	pos := end - entryHeader // end of the entries before the footer entry
	for pos-start >= entryHeader {
		hdr := fw.data[pos-entryHeader : pos]
		n := int(binary.LittleEndian.Uint16(hdr[:2]))
		if n < entryHeader || pos-n < start {
			return errorf(kind, "%s footer GUID table has a malformed entry (length %d)", what, n)
		}
		fw.table[[16]byte(hdr[2:])] = fw.data[pos-n : pos-entryHeader]
		pos -= n
	}
	return nil
}

// u32Entry returns the first little-endian u32 of a table entry.
func (fw *firmware) u32Entry(guid string) (uint32, bool) {
	p, ok := fw.table[guidBytes(guid)]
	if !ok || len(p) < 4 {
		return 0, false
	}
	return binary.LittleEndian.Uint32(p), true
}

// parseMetadata reads the OVMF SEV metadata ("ASEV" header: signature[4],
// u32 length, u32 version = 1, u32 number of sections; then per section
// u32 GPA, u32 size, u32 type).
func (fw *firmware) parseMetadata(what string, kind Kind) error {
	off, ok := fw.u32Entry(guidSEVMetadata)
	if !ok {
		return errorf(kind, "%s image has no SEV metadata (GUID %s): it is not built for SEV-SNP", what, guidSEVMetadata)
	}
	const hdrLen, descLen = 16, 12
	if off < hdrLen || int64(off) > int64(len(fw.data)) {
		return errorf(kind, "%s SEV metadata offset %#x is out of range", what, off)
	}
	md := fw.data[len(fw.data)-int(off):]
	if string(md[:4]) != sevMetadataMagic {
		return errorf(kind, "%s SEV metadata has a bad signature %q", what, md[:4])
	}
	length := binary.LittleEndian.Uint32(md[4:])
	version := binary.LittleEndian.Uint32(md[8:])
	count := binary.LittleEndian.Uint32(md[12:])
	if version != 1 {
		return errorf(kind, "%s SEV metadata version %d is not supported (want 1)", what, version)
	}
	if uint64(length) > uint64(len(md)) || uint64(length) < hdrLen+uint64(count)*descLen {
		return errorf(kind, "%s SEV metadata length %d does not hold %d sections", what, length, count)
	}
	if count == 0 {
		return errorf(kind, "%s SEV metadata lists no sections", what)
	}
	for i := range count {
		d := md[hdrLen+i*descLen:]
		s := Section{
			GPA:  binary.LittleEndian.Uint32(d[0:]),
			Size: binary.LittleEndian.Uint32(d[4:]),
			Type: SectionType(binary.LittleEndian.Uint32(d[8:])),
		}
		switch s.Type {
		case SectionSNPSecMem, SectionSNPSecrets, SectionCPUID, SectionSVSMCAA, SectionSNPKernelHashes:
		default:
			return errorf(kind, "%s SEV metadata section %d has unknown type %#x", what, i, uint32(s.Type))
		}
		if s.GPA%pageSize != 0 || s.Size%pageSize != 0 || s.Size == 0 {
			return errorf(kind, "%s SEV metadata section %d (GPA %#x, size %#x) is not page aligned", what, i, s.GPA, s.Size)
		}
		fw.sections = append(fw.sections, s)
	}
	return nil
}

// hasSection reports whether the metadata lists a section of type t.
func (fw *firmware) hasSection(t SectionType) bool {
	for _, s := range fw.sections {
		if s.Type == t {
			return true
		}
	}
	return false
}
