package sim

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/x509/pkix"
	"encoding/asn1"
	"encoding/binary"
	"fmt"

	"github.com/google/go-sev-guest/abi"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/snp"
)

// DefaultChipID is the CHIP_ID of a report whose ReportFields.ChipID is nil
// (Turin uses bytes 0–7).
var DefaultChipID = func() (id [64]byte) {
	for i := range id {
		id[i] = byte(0xc0 + i%16)
	}
	return id
}()

// DefaultTCB is the REPORTED_TCB of a report whose ReportFields.ReportedTCB
// is nil (FMC counts on Turin only).
var DefaultTCB = attest.TCB{Bootloader: 3, TEE: 1, SNP: 8, Microcode: 115, FMC: u8(2)}

func u8(v uint8) *uint8 { return &v }

// DebugPolicy is a guest policy with DEBUG allowed (bit 19).
const DebugPolicy uint64 = 0x30000 | 1<<19

// ReportFields are the fields of a simulated report; the zero value of a
// field means the default noted beside it.
type ReportFields struct {
	Version     uint32      // 0 means 5
	Policy      uint64      // 0 means 0x30000 (SMT allowed, reserved bit 17 set)
	VMPL        uint32      //
	Signer      snp.Signer  // "" means VCEK
	Measurement [48]byte    //
	ReportData  [64]byte    //
	HostData    [32]byte    //
	ReportedTCB *attest.TCB // nil means DefaultTCB
	ChipID      *[64]byte   // nil means DefaultChipID (Turin: bytes 0–7 only)
	ReportID    [32]byte    // REPORT_ID; zero: none
	// Mutate, when not nil, changes the finished report before it is
	// signed, for fields the others do not reach.
	Mutate func(report []byte)
}

// Sign returns a raw SEV-SNP report of product p with the fields of f,
// signed with key as the AMD-SP signs with the VCEK or VLEK (SEV-SNP ABI
// 56860, ATTESTATION_REPORT). key must be of the kind f.Signer names.
func (f ReportFields) Sign(p snp.Product, key *ecdsa.PrivateKey) []byte {
	r := make([]byte, abi.ReportSize)
	le32 := binary.LittleEndian.PutUint32
	le64 := binary.LittleEndian.PutUint64
	version := f.Version
	if version == 0 {
		version = 5
	}
	policy := f.Policy
	if policy == 0 {
		policy = 0x30000
	}
	tcb := DefaultTCB
	if f.ReportedTCB != nil {
		tcb = *f.ReportedTCB
	}
	chip := DefaultChipID
	if f.ChipID != nil {
		chip = *f.ChipID
	}
	if p == snp.Turin {
		clear(chip[8:])
	}
	raw := uint64(p.EncodeTCB(tcb))
	le32(r[0x00:], version)
	le64(r[0x08:], policy)
	le32(r[0x30:], f.VMPL)
	le32(r[0x34:], abi.SignEcdsaP384Sha384)
	le64(r[0x38:], raw) // CURRENT_TCB
	le64(r[0x40:], 0x1) // PLATFORM_INFO: SMT enabled
	if f.Signer == snp.SignerVLEK {
		le32(r[0x48:], 1<<2)
	}
	copy(r[0x50:], f.ReportData[:])
	copy(r[0x90:], f.Measurement[:])
	copy(r[0xC0:], f.HostData[:])
	copy(r[0x140:], f.ReportID[:])
	for i := 0x160; i < 0x180; i++ {
		r[i] = 0xff // REPORT_ID_MA: no migration agent
	}
	le64(r[0x180:], raw) // REPORTED_TCB
	if version >= 3 {
		fms := map[snp.Product][3]byte{snp.Milan: {0x19, 0x01, 0x01}, snp.Genoa: {0x19, 0x11, 0x01}, snp.Turin: {0x1A, 0x02, 0x01}}[p]
		copy(r[0x188:], fms[:])
	}
	copy(r[0x1A0:], chip[:])
	le64(r[0x1E0:], raw)                     // COMMITTED_TCB
	r[0x1E8], r[0x1E9], r[0x1EA] = 30, 55, 1 // CURRENT_BUILD/MINOR/MAJOR 1.55.30
	r[0x1EC], r[0x1ED], r[0x1EE] = 30, 55, 1 // COMMITTED
	le64(r[0x1F0:], raw)                     // LAUNCH_TCB
	if f.Mutate != nil {
		f.Mutate(r)
	}
	Resign(r, key)
	return r
}

// Resign recomputes the signature of report r with key, as the AMD-SP
// would for bytes 0x000–0x29F.
func Resign(r []byte, key *ecdsa.PrivateKey) {
	h := crypto.SHA384.New()
	h.Write(r[:0x2A0])
	R, S, err := ecdsa.Sign(rand.Reader, key, h.Sum(nil))
	if err != nil {
		panic(fmt.Sprintf("sim: signing: %v", err))
	}
	clear(r[0x2A0:])
	if err := abi.SetSignature(R, S, r); err != nil {
		panic(fmt.Sprintf("sim: %v", err))
	}
}

// HWID is the KDS hardware id of chipID on product p: the whole CHIP_ID,
// or its first 8 bytes on Turin (VCEK spec 57230).
func HWID(p snp.Product, chipID [64]byte) []byte {
	if p == snp.Turin {
		return chipID[:8]
	}
	return chipID[:]
}

// EndorsementExtensions are the AMD extensions of a VCEK (hwid != nil) or
// VLEK (cspID != "") in the form AMD's KDS issues them for product p
// (VCEK spec 57230, "VCEK Certificate Extensions"; Turin: structVersion 1,
// fmcSPL, no spl_4).
func EndorsementExtensions(p snp.Product, productName string, tcb attest.TCB, hwid []byte, cspID string) []pkix.Extension {
	oid := func(arc ...int) asn1.ObjectIdentifier {
		return append(asn1.ObjectIdentifier{1, 3, 6, 1, 4, 1, 3704, 1}, arc...)
	}
	integer := func(v int) []byte { b, _ := asn1.Marshal(v); return b }
	ia5 := func(s string) []byte { b, _ := asn1.MarshalWithParams(s, "ia5"); return b }
	structVersion := 0
	if p == snp.Turin {
		structVersion = 1
	}
	if hwid == nil {
		productName = string(p) // VLEKs carry no stepping
	}
	exts := []pkix.Extension{
		{Id: oid(1), Value: integer(structVersion)},
		{Id: oid(2), Value: ia5(productName)},
		{Id: oid(3, 1), Value: integer(int(tcb.Bootloader))},
		{Id: oid(3, 2), Value: integer(int(tcb.TEE))},
		{Id: oid(3, 3), Value: integer(int(tcb.SNP))},
	}
	if p != snp.Turin {
		exts = append(exts, pkix.Extension{Id: oid(3, 4), Value: integer(0)})
	}
	exts = append(exts,
		pkix.Extension{Id: oid(3, 5), Value: integer(0)},
		pkix.Extension{Id: oid(3, 6), Value: integer(0)},
		pkix.Extension{Id: oid(3, 7), Value: integer(0)},
		pkix.Extension{Id: oid(3, 8), Value: integer(int(tcb.Microcode))})
	if p == snp.Turin && tcb.FMC != nil {
		exts = append(exts, pkix.Extension{Id: oid(3, 9), Value: integer(int(*tcb.FMC))})
	}
	if hwid != nil {
		exts = append(exts, pkix.Extension{Id: oid(4), Value: hwid}) // raw, as KDS does
	} else {
		exts = append(exts, pkix.Extension{Id: oid(5), Value: ia5(cspID)})
	}
	return exts
}

// ProductName is the productName extension of a VCEK of product p as the
// KDS issues it.
func ProductName(p snp.Product) string {
	return map[snp.Product]string{snp.Milan: "Milan-B0", snp.Genoa: "Genoa", snp.Turin: "Turin"}[p]
}
