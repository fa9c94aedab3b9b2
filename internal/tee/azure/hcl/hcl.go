// Package hcl reads the report blob that Azure's paravisor (the HCL) writes
// to the vTPM NV index 0x01400001 of a confidential VM: a 32-byte header
// starting "HCLA", the hardware report area (an SEV-SNP ATTESTATION_REPORT,
// or a TDX TDREPORT padded to the same 1184 bytes), then a 20-byte
// runtime-data header whose last field is the size of the runtime-data JSON
// that follows it. The hardware report binds the runtime data by
// REPORT_DATA = SHA-256(runtime data as stored) ‖ 32 zero bytes.
//
// Nothing here is verified: Parse only frames the blob. The hardware
// report's signature (SEV-SNP) or the TD quote made from it (TDX) is what
// makes its REPORT_DATA, and through it the runtime data, trustworthy.
package hcl

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// Layout of the blob (offsets in bytes).
const (
	HeaderSize     = 0x20
	ReportAreaSize = 1184                        // the SEV-SNP report size; a TDREPORT (1024 bytes) is padded to it
	ReportEnd      = HeaderSize + ReportAreaSize // 0x4C0
	reportTypeOff  = ReportEnd + 8
	hashTypeOff    = ReportEnd + 12
	varSizeOff     = ReportEnd + 16
	VarDataOff     = ReportEnd + 20 // where the runtime-data JSON starts
	// TDReportSize is the size of a TDX TDREPORT inside the report area.
	TDReportSize = 1024
)

// Report types of the runtime-data header.
const (
	TypeSNP = 2
	TypeTDX = 4
)

// hashSHA256 is the runtime-data header's report_data_hash_type for SHA-256.
const hashSHA256 = 1

// Magic starts every HCL report blob.
var Magic = []byte("HCLA")

// Report is a framed HCL blob. Its slices alias the parsed blob.
type Report struct {
	// Type is TypeSNP or TypeTDX.
	Type uint32
	// Hardware is the hardware report: 1184 bytes of SEV-SNP report, or a
	// 1024-byte TDREPORT.
	Hardware []byte
	// RuntimeData is the runtime-data JSON exactly as stored (hash it as
	// is; never re-serialise it).
	RuntimeData []byte
}

// Parse frames an HCL report blob: its magic, the runtime-data header's
// report type (SEV-SNP or TDX) and hash type (SHA-256 only), and the
// runtime data's bounds. Bytes after the runtime data (the NV index's zero
// padding) are ignored. An error names what is wrong.
func Parse(b []byte) (*Report, error) {
	if !bytes.HasPrefix(b, Magic) {
		return nil, fmt.Errorf("not an HCL report (no %q header)", Magic)
	}
	if len(b) < VarDataOff {
		return nil, fmt.Errorf("HCL report is %d bytes, shorter than its headers", len(b))
	}
	r := &Report{Type: binary.LittleEndian.Uint32(b[reportTypeOff:])}
	switch r.Type {
	case TypeSNP:
		r.Hardware = b[HeaderSize:ReportEnd:ReportEnd]
	case TypeTDX:
		r.Hardware = b[HeaderSize : HeaderSize+TDReportSize : HeaderSize+TDReportSize]
	default:
		return nil, fmt.Errorf("HCL report type is %d, neither SEV-SNP (2) nor TDX (4)", r.Type)
	}
	if h := binary.LittleEndian.Uint32(b[hashTypeOff:]); h != hashSHA256 {
		return nil, fmt.Errorf("HCL runtime data hash type is %d, only SHA-256 (1) is supported", h)
	}
	n := uint64(binary.LittleEndian.Uint32(b[varSizeOff:]))
	if uint64(VarDataOff)+n > uint64(len(b)) {
		return nil, fmt.Errorf("HCL runtime data of %d bytes overruns the %d-byte blob", n, len(b))
	}
	r.RuntimeData = b[VarDataOff : VarDataOff+int(n) : VarDataOff+int(n)]
	return r, nil
}

// BlobSize is the size of the NV index the HCL writes its report to.
const BlobSize = 2600

// Build lays out an HCL report blob (the inverse of Parse), as Azure's
// paravisor writes it and the simulator makes it: the header, hardware in
// the report area (zero-padded), the runtime-data header (SHA-256) and the
// runtime data, zero-padded to BlobSize when it fits.
func Build(typ uint32, hardware, runtimeData []byte) []byte {
	b := make([]byte, max(BlobSize, VarDataOff+len(runtimeData)))
	copy(b, Magic)
	binary.LittleEndian.PutUint32(b[4:], 2)                                   // header version
	binary.LittleEndian.PutUint32(b[8:], uint32(VarDataOff+len(runtimeData))) // bytes used
	binary.LittleEndian.PutUint32(b[12:], 2)                                  // request type
	copy(b[HeaderSize:ReportEnd], hardware)
	binary.LittleEndian.PutUint32(b[ReportEnd:], uint32(20+len(runtimeData))) // data size
	binary.LittleEndian.PutUint32(b[ReportEnd+4:], 1)                         // version
	binary.LittleEndian.PutUint32(b[reportTypeOff:], typ)
	binary.LittleEndian.PutUint32(b[hashTypeOff:], hashSHA256)
	binary.LittleEndian.PutUint32(b[varSizeOff:], uint32(len(runtimeData)))
	copy(b[VarDataOff:], runtimeData)
	return b
}
