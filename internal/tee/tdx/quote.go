package tdx

import (
	"encoding/binary"
	"fmt"

	"github.com/trustgate/trustgate/internal/attest"
)

// Quote framing (Intel TDX DCAP Quote Generation Library and Quote
// Verification Library API, "Quote Format": header, TD quote body, signature
// data). All integers are little-endian.
const (
	HeaderSize = 48  // quote header
	Body10Size = 584 // TD quote body of TDX 1.0 (TD10_REPORT_BODY)
	Body15Size = 648 // TD quote body of TDX 1.5 (TD15_REPORT_BODY)

	// Version 5 puts a body descriptor between header and body.
	v5DescriptorSize = 6 // body type u16, body size u32

	bodyTypeTDX10 = 2 // v5 body type of a TDX 1.0 body
	bodyTypeTDX15 = 3 // v5 body type of a TDX 1.5 body

	teeTypeTDX          = 0x81 // header TEE type of a TDX quote (0 = SGX)
	attKeyTypeECDSAP256 = 2    // ECDSA-256-with-P-256 curve

	sigSize      = 64  // ECDSA P-256 signature, r ‖ s big-endian
	attKeySize   = 64  // attestation public key, X ‖ Y big-endian
	qeReportSize = 384 // SGX REPORT BODY of the Quoting Enclave

	certTypePCKChain = 5 // concatenated PEM: PCK leaf, PCK CA, Root CA
	certTypeQEReport = 6 // QE report certification data

	// MaxQuoteSize bounds a quote: its signature data holds a PEM chain of
	// a few KiB; real quotes are about 5 KiB (some come in 8000-byte
	// buffers, the rest zero).
	MaxQuoteSize = 32 << 10
)

// TD body field offsets (TD10_REPORT_BODY; the TD15 body appends two).
const (
	offTEETCBSVN    = 0x000 // 16
	offMRSeam       = 0x010 // 48
	offMRSignerSeam = 0x040 // 48
	offSeamAttrs    = 0x070 // 8
	offTDAttributes = 0x078 // 8
	offXFAM         = 0x080 // 8
	offMRTD         = 0x088 // 48
	offMRConfigID   = 0x0B8 // 48
	offMROwner      = 0x0E8 // 48
	offMROwnerCfg   = 0x118 // 48
	offRTMR0        = 0x148 // 4 × 48
	offReportData   = 0x208 // 64
	offTEETCBSVN2   = 0x248 // 16, TDX 1.5
	offMRServiceTD  = 0x258 // 48, TDX 1.5
)

// SGX REPORT BODY offsets of the QE report (Intel SGX DCAP, "Enclave Report").
const (
	qeOffCPUSVN     = 0   // 16
	qeOffMiscSelect = 16  // u32
	qeOffAttributes = 48  // 16
	qeOffMRSigner   = 128 // 32
	qeOffISVProdID  = 256 // u16
	qeOffISVSVN     = 258 // u16
	qeOffReportData = 320 // 64
)

// framed is a quote cut into its parts. Nothing here is trusted: it is
// where the bytes lie, so that signatures can be checked over them.
type framed struct {
	version  uint16
	signed   []byte // header (and v5 descriptor) and body: what the attestation key signs
	header   []byte // 48 bytes
	body     []byte // 584 or 648 bytes
	bodyType uint16 // 2 (TDX 1.0) or 3 (TDX 1.5)
	sig      []byte // 64: quote signature by the attestation key
	attKey   []byte // 64: attestation key X ‖ Y
	qeReport []byte // 384: the QE's SGX report, signed by the PCK key
	qeSig    []byte // 64: QE report signature by the PCK key
	qeAuth   []byte // QE authentication data
	pckChain []byte // PEM: PCK leaf, its CA, the root
	size     int    // bytes of the quote; the rest of the input is ignored
}

// frame cuts a quote into its parts, checking only that every length stays
// inside the input. Bytes after the quote are ignored.
func frame(q []byte) (*framed, error) {
	bad := func(format string, a ...any) (*framed, error) {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "quote: "+format, a...)
	}
	if len(q) < HeaderSize {
		return bad("%d bytes, shorter than its %d-byte header", len(q), HeaderSize)
	}
	f := &framed{version: binary.LittleEndian.Uint16(q[0:2]), header: q[:HeaderSize]}
	var bodyEnd int
	switch f.version {
	case 4:
		f.bodyType, bodyEnd = bodyTypeTDX10, HeaderSize+Body10Size
		if len(q) < bodyEnd+4 {
			return bad("version 4 quote of %d bytes is shorter than header and body", len(q))
		}
		f.body = q[HeaderSize:bodyEnd]
	case 5:
		if len(q) < HeaderSize+v5DescriptorSize {
			return bad("version 5 quote of %d bytes has no body descriptor", len(q))
		}
		f.bodyType = binary.LittleEndian.Uint16(q[HeaderSize:])
		size := binary.LittleEndian.Uint32(q[HeaderSize+2:])
		want := uint32(0)
		switch f.bodyType {
		case bodyTypeTDX10:
			want = Body10Size
		case bodyTypeTDX15:
			want = Body15Size
		default:
			return nil, attest.Errorf(attest.ReasonUnsupportedVersion, "quote: version 5 body type %d is not a TD body (2 or 3)", f.bodyType)
		}
		if size != want {
			return bad("body type %d has size %d, want %d", f.bodyType, size, want)
		}
		start := HeaderSize + v5DescriptorSize
		bodyEnd = start + int(size)
		if len(q) < bodyEnd+4 {
			return bad("version 5 quote of %d bytes is shorter than header and body", len(q))
		}
		f.body = q[start:bodyEnd]
	default:
		return nil, attest.Errorf(attest.ReasonUnsupportedVersion, "quote version %d (want 4 or 5)", f.version)
	}
	f.signed = q[:bodyEnd]
	sigLen := uint64(binary.LittleEndian.Uint32(q[bodyEnd:]))
	sd := q[bodyEnd+4:]
	if sigLen > uint64(len(sd)) {
		return bad("signature data of %d bytes overruns the %d bytes that follow the body", sigLen, len(sd))
	}
	sd = sd[:sigLen]
	f.size = bodyEnd + 4 + int(sigLen)
	r := reader{b: sd}
	f.sig = r.next(sigSize)
	f.attKey = r.next(attKeySize)
	certType := r.u16()
	cd := r.next(int(r.u32()))
	if r.err != nil {
		return bad("signature data: %v", r.err)
	}
	if certType != certTypeQEReport {
		return nil, attest.Errorf(attest.ReasonUnsupportedVersion, "quote: certification data type %d (want %d, QE report)", certType, certTypeQEReport)
	}
	r = reader{b: cd}
	f.qeReport = r.next(qeReportSize)
	f.qeSig = r.next(sigSize)
	f.qeAuth = r.next(int(r.u16()))
	innerType := r.u16()
	f.pckChain = r.next(int(r.u32()))
	if r.err != nil {
		return bad("QE certification data: %v", r.err)
	}
	if innerType != certTypePCKChain {
		return nil, attest.Errorf(attest.ReasonUnsupportedVersion, "quote: QE certification data type %d (want %d, PCK chain)", innerType, certTypePCKChain)
	}
	return f, nil
}

// reader takes fields off a byte slice, remembering the first overrun.
type reader struct {
	b   []byte
	err error
}

func (r *reader) next(n int) []byte {
	if r.err != nil {
		return nil
	}
	if n < 0 || n > len(r.b) {
		r.err = fmt.Errorf("field of %d bytes overruns the %d left", n, len(r.b))
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) u16() uint16 {
	b := r.next(2)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint16(b)
}

func (r *reader) u32() uint32 {
	b := r.next(4)
	if b == nil {
		return 0
	}
	return binary.LittleEndian.Uint32(b)
}

// tdClaims decodes the header and body of a quote whose signature has
// verified.
func tdClaims(f *framed) (*attest.TDXClaims, error) {
	if t := binary.LittleEndian.Uint32(f.header[4:8]); t != teeTypeTDX {
		return nil, attest.Errorf(attest.ReasonUnsupportedVersion, "quote TEE type %#x is not TDX (0x81)", t)
	}
	if k := binary.LittleEndian.Uint16(f.header[2:4]); k != attKeyTypeECDSAP256 {
		return nil, attest.Errorf(attest.ReasonUnsupportedVersion, "attestation key type %d (want 2, ECDSA P-256)", k)
	}
	b := f.body
	h := func(off, n int) attest.Hex { return attest.Hex(b[off : off+n : off+n]) }
	attrs := binary.LittleEndian.Uint64(b[offTDAttributes:])
	c := &attest.TDXClaims{
		TEE:           attest.TEETDX,
		QuoteVersion:  f.version,
		TEETCBSVN:     h(offTEETCBSVN, 16),
		MRSeam:        h(offMRSeam, 48),
		MRSignerSeam:  h(offMRSignerSeam, 48),
		SeamAttrs:     h(offSeamAttrs, 8),
		XFAM:          h(offXFAM, 8),
		MRTD:          h(offMRTD, 48),
		MRConfigID:    h(offMRConfigID, 48),
		MROwner:       h(offMROwner, 48),
		MROwnerConfig: h(offMROwnerCfg, 48),
		RTMR0:         h(offRTMR0, 48),
		RTMR1:         h(offRTMR0+48, 48),
		RTMR2:         h(offRTMR0+96, 48),
		RTMR3:         h(offRTMR0+144, 48),
		ReportData:    h(offReportData, 64),
		TDAttributes: attest.TDAttributes{
			Debug:         attrs&(1<<0) != 0,
			SEPTVEDisable: attrs&(1<<28) != 0,
			PKS:           attrs&(1<<30) != 0,
			KL:            attrs&(1<<31) != 0,
			PerfMon:       attrs&(1<<63) != 0,
		},
	}
	if f.bodyType == bodyTypeTDX15 {
		c.TEETCBSVN2 = h(offTEETCBSVN2, 16)
		c.MRServiceTD = h(offMRServiceTD, 48)
	}
	return c, nil
}
