package snp

import (
	"encoding/binary"
	"fmt"

	"github.com/google/go-sev-guest/abi"
	"github.com/trustgate/trustgate/internal/attest"
)

// Report versions trustgate accepts. Version 2 is the first SNP report
// format, 3 added the CPUID bytes, 5 the mitigation vectors (SEV-SNP ABI
// 56860, ATTESTATION_REPORT); 4 is laid out like 3.
const (
	MinReportVersion = 2
	MaxReportVersion = 5
)

// decoded is a report whose signature has verified, decoded into claims plus
// the fields the key checks need.
type decoded struct {
	claims       attest.Claims
	signer       Signer
	reportedTCB  TCBVersion
	chipIDMasked bool
	cpuidProduct Product
	cpuidKnown   bool
}

// decodeSigned checks the structure of a report whose signature has already
// verified and decodes it, TCBs in the layout of product p. go-sev-guest's
// ReportToProto checks the reserved fields it knows; the ones it skips for
// versions before 5 (0x1F8–0x207) are checked here.
func decodeSigned(report []byte, p Product) (*decoded, error) {
	version := leUint32(report[0:4])
	if version < MinReportVersion || version > MaxReportVersion {
		return nil, attest.Errorf(attest.ReasonUnsupportedVersion, "report version %d, supported %d to %d", version, MinReportVersion, MaxReportVersion)
	}
	pb, err := abi.ReportToProto(report)
	if err != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "report: %w", err)
	}
	if version < 5 {
		for _, b := range report[0x1F8:0x208] {
			if b != 0 {
				return nil, attest.Errorf(attest.ReasonMalformedEvidence, "reserved bytes 0x1F8-0x207 are not zero in a version %d report", version)
			}
		}
	}
	si, err := abi.ParseSignerInfo(pb.GetSignerInfo())
	if err != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "report signer info: %w", err)
	}
	d := &decoded{reportedTCB: TCBVersion(pb.GetReportedTcb())}
	switch si.SigningKey {
	case abi.VcekReportSigner:
		d.signer = SignerVCEK
	case abi.VlekReportSigner:
		d.signer = SignerVLEK
	default:
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "report SIGNING_KEY is %v", si.SigningKey)
	}
	if version >= 3 {
		d.cpuidProduct, d.cpuidKnown = productFromCPUID(report[0x188], report[0x189])
	}
	var zero [64]byte
	d.chipIDMasked = string(pb.GetChipId()) == string(zero[:])

	pol, err := abi.ParseSnpPolicy(pb.GetPolicy())
	if err != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "report guest policy: %w", err)
	}
	pi := pb.GetPlatformInfo()
	bit := func(n uint) bool { return pi&(1<<n) != 0 }
	d.claims = attest.Claims{
		TEE:             "sev-snp",
		Product:         string(p),
		Signer:          string(d.signer),
		ReportVersion:   version,
		VMPL:            pb.GetVmpl(),
		GuestSVN:        pb.GetGuestSvn(),
		Measurement:     pb.GetMeasurement(),
		HostData:        pb.GetHostData(),
		ReportData:      pb.GetReportData(),
		FamilyID:        pb.GetFamilyId(),
		ImageID:         pb.GetImageId(),
		IDKeyDigest:     pb.GetIdKeyDigest(),
		AuthorKeyDigest: pb.GetAuthorKeyDigest(),
		AuthorKeyEn:     si.AuthorKeyEn,
		MaskChipKey:     si.MaskChipKey,
		ReportID:        pb.GetReportId(),
		ReportIDMA:      pb.GetReportIdMa(),
		ChipID:          pb.GetChipId(),
		Policy: attest.GuestPolicy{
			ABIMajor: pol.ABIMajor, ABIMinor: pol.ABIMinor, SMT: pol.SMT, MigrateMA: pol.MigrateMA,
			Debug: pol.Debug, SingleSocket: pol.SingleSocket, CXLAllow: pol.CXLAllowed,
			MemAES256XTS: pol.MemAES256XTS, RAPLDis: pol.RAPLDis,
			CiphertextHiding: pol.CipherTextHidingDRAM, PageSwapDisable: pol.PageSwapDisable,
		},
		// PLATFORM_INFO bits (SEV-SNP ABI 56860); bit 6 is set on Turin
		// parts and rejected by go-sev-guest v0.15.0, so it is decoded here.
		PlatformInfo: attest.PlatformInfo{
			SMTEnabled: bit(0), TSMEEnabled: bit(1), ECCEnabled: bit(2), RAPLDisabled: bit(3),
			CiphertextHidingEnabled: bit(4), AliasCheckComplete: bit(5), IOMMUWriteSafe: bit(6), TIOEnabled: bit(7),
		},
		CurrentTCB:       p.DecodeTCB(TCBVersion(pb.GetCurrentTcb())),
		CommittedTCB:     p.DecodeTCB(TCBVersion(pb.GetCommittedTcb())),
		ReportedTCB:      p.DecodeTCB(d.reportedTCB),
		LaunchTCB:        p.DecodeTCB(TCBVersion(pb.GetLaunchTcb())),
		CurrentVersion:   fmt.Sprintf("%d.%d.%d", pb.GetCurrentMajor(), pb.GetCurrentMinor(), pb.GetCurrentBuild()),
		CommittedVersion: fmt.Sprintf("%d.%d.%d", pb.GetCommittedMajor(), pb.GetCommittedMinor(), pb.GetCommittedBuild()),
	}
	return d, nil
}

func leUint32(b []byte) uint32 { return binary.LittleEndian.Uint32(b) }
func leUint64(b []byte) uint64 { return binary.LittleEndian.Uint64(b) }
