package snp

import (
	"encoding/binary"
	"fmt"

	"github.com/google/go-sev-guest/abi"
	"github.com/google/uuid"
)

// MaxCertTableSize bounds the extended-report certificate table. The guest
// driver caps it at SEV_FW_BLOB_MAX_SIZE, 16 KiB (Linux sev-guest.h); 64 KiB
// leaves room for hosts that hand it over some other way.
const MaxCertTableSize = 64 << 10

// certTable is the decoded GHCB certificate table (GHCB 56421 §4.1.8.1):
// GUID → blob.
type certTable map[uuid.UUID][]byte

// parseCertTable decodes the table with go-sev-guest's entry parser after
// checking every entry's range in 64-bit arithmetic: v0.15.0 adds offset and
// length in uint32, so a hostile entry can wrap around and panic its
// Unmarshal. A duplicated GUID is refused.
func parseCertTable(b []byte) (certTable, error) {
	if len(b) == 0 {
		return nil, nil
	}
	if len(b) > MaxCertTableSize {
		return nil, fmt.Errorf("certificate table is %d bytes, limit %d", len(b), MaxCertTableSize)
	}
	headers, err := abi.ParseSnpCertTableHeader(b)
	if err != nil {
		return nil, fmt.Errorf("certificate table: %w", err)
	}
	t := make(certTable, len(headers))
	for i, h := range headers {
		end := uint64(h.Offset) + uint64(h.Length)
		if end > uint64(len(b)) || h.Length == 0 {
			return nil, fmt.Errorf("certificate table entry %d (offset %d, length %d) is outside the %d-byte table", i, h.Offset, h.Length, len(b))
		}
		if _, dup := t[h.GUID]; dup {
			return nil, fmt.Errorf("certificate table names GUID %s twice", h.GUID)
		}
		t[h.GUID] = b[h.Offset:end]
	}
	return t, nil
}

var (
	guidVCEK = uuid.MustParse(abi.VcekGUID)
	guidVLEK = uuid.MustParse(abi.VlekGUID)
	guidASK  = uuid.MustParse(abi.AskGUID)
	guidARK  = uuid.MustParse(abi.ArkGUID)
)

// reportSigner reads the SIGNING_KEY field (bits 4:2 at 0x48, SEV-SNP ABI
// 56860) only to choose which certificate to look for; it is checked against
// the verified key after the signature.
func reportSigner(report []byte) Signer {
	if (binary.LittleEndian.Uint32(report[0x48:0x4C])>>2)&7 == 1 {
		return SignerVLEK
	}
	return SignerVCEK
}
