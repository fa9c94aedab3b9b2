package attest

import (
	"crypto/sha512"
	"encoding/hex"
	"encoding/json"
)

// Hex is a byte string that marshals to JSON as lowercase hex, never base64,
// so that a Rego policy compares it as a plain string (SPEC "Claims").
type Hex []byte

// MarshalJSON renders h as a lowercase hex JSON string.
func (h Hex) MarshalJSON() ([]byte, error) { return json.Marshal(hex.EncodeToString(h)) }

// UnmarshalJSON parses a hex JSON string.
func (h *Hex) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := hex.DecodeString(s)
	if err != nil {
		return err
	}
	*h = v
	return nil
}

// String returns the lowercase hex form of h.
func (h Hex) String() string { return hex.EncodeToString(h) }

// Claims is the flat, stable view of one verified report that policy sees
// (SPEC "Claims"). It is built only from evidence whose signature and chain
// have been verified. Claims are evaluated and dropped: never logged, stored,
// or put whole into a token.
type Claims struct {
	TEE             string `json:"tee"`            // "sev-snp"
	Product         string `json:"product"`        // "Milan", "Genoa", "Turin"
	Signer          string `json:"signer"`         // "vcek" or "vlek"
	ReportVersion   uint32 `json:"report_version"` // 2..5
	VMPL            uint32 `json:"vmpl"`
	GuestSVN        uint32 `json:"guest_svn"`
	Measurement     Hex    `json:"measurement"` // 48 bytes
	HostData        Hex    `json:"host_data"`   // 32 bytes
	ReportData      Hex    `json:"report_data"` // 64 bytes
	FamilyID        Hex    `json:"family_id"`   // 16 bytes
	ImageID         Hex    `json:"image_id"`    // 16 bytes
	IDKeyDigest     Hex    `json:"id_key_digest"`
	AuthorKeyDigest Hex    `json:"author_key_digest"` // meaningful only with AuthorKeyEn
	// AuthorKeyEn is SIGNER_INFO bit 0: the ID block was signed by an author
	// key, so AuthorKeyDigest names it (all zero otherwise).
	AuthorKeyEn bool `json:"author_key_en"`
	// MaskChipKey is SIGNER_INFO bit 1: the host configured the platform
	// not to use the VCEK in attestation (the report is then VLEK-signed or
	// unsigned).
	MaskChipKey      bool         `json:"mask_chip_key"`
	ReportID         Hex          `json:"report_id"`
	ReportIDMA       Hex          `json:"report_id_ma"`
	ChipID           Hex          `json:"chip_id"` // 64 bytes; all zero when the host masks it
	Policy           GuestPolicy  `json:"policy"`
	PlatformInfo     PlatformInfo `json:"platform_info"`
	CurrentTCB       TCB          `json:"current_tcb"`
	CommittedTCB     TCB          `json:"committed_tcb"`
	ReportedTCB      TCB          `json:"reported_tcb"`
	LaunchTCB        TCB          `json:"launch_tcb"`
	CurrentVersion   string       `json:"current_version"`   // firmware "major.minor.build"
	CommittedVersion string       `json:"committed_version"` // firmware "major.minor.build"
	// Launch is what the verifier knows of this guest's launch (policy
	// input.launch); nil outside POST /v1/attest.
	Launch *Launch `json:"launch,omitempty"`
}

// GuestPolicy is the decoded SEV-SNP guest policy (SEV-SNP ABI 56860,
// "Guest Policy" table).
type GuestPolicy struct {
	ABIMajor         uint8 `json:"abi_major"`
	ABIMinor         uint8 `json:"abi_minor"`
	SMT              bool  `json:"smt"`
	MigrateMA        bool  `json:"migrate_ma"`
	Debug            bool  `json:"debug"`
	SingleSocket     bool  `json:"single_socket"`
	CXLAllow         bool  `json:"cxl_allow"`
	MemAES256XTS     bool  `json:"mem_aes_256_xts"`
	RAPLDis          bool  `json:"rapl_dis"`
	CiphertextHiding bool  `json:"ciphertext_hiding"`
	PageSwapDisable  bool  `json:"page_swap_disable"`
}

// PlatformInfo is the decoded PLATFORM_INFO field (SEV-SNP ABI 56860,
// ATTESTATION_REPORT table).
type PlatformInfo struct {
	SMTEnabled              bool `json:"smt_enabled"`
	TSMEEnabled             bool `json:"tsme_enabled"`
	ECCEnabled              bool `json:"ecc_enabled"`
	RAPLDisabled            bool `json:"rapl_disabled"`
	CiphertextHidingEnabled bool `json:"ciphertext_hiding_enabled"`
	AliasCheckComplete      bool `json:"alias_check_complete"`
	IOMMUWriteSafe          bool `json:"iommu_write_safe"` // bit 6, Turin
	TIOEnabled              bool `json:"tio_enabled"`
}

// TCB is one decoded TCB_VERSION. Its byte layout depends on the product
// (Milan/Genoa vs Turin); FMC exists on Turin only and is nil elsewhere.
type TCB struct {
	Bootloader uint8  `json:"bootloader"`
	TEE        uint8  `json:"tee"`
	SNP        uint8  `json:"snp"`
	Microcode  uint8  `json:"microcode"`
	FMC        *uint8 `json:"fmc,omitempty"`
}

// Expect checks claims against exact expectations: a launch measurement
// (48 bytes) and REPORT_DATA (64 bytes); a nil expectation is not checked.
// Comparisons take constant time.
func (c *Claims) Expect(measurement, reportData []byte) error {
	return Expect(c, measurement, reportData)
}

// NonceSize is the size of a verifier nonce, the size of REPORT_DATA.
const NonceSize = 64

// Nonce is a verifier-issued challenge (SPEC "HTTP API v1" rule 1).
type Nonce [NonceSize]byte

// BindReportData is SPEC rule 2 with a key: REPORT_DATA =
// SHA-512(nonce ‖ thumbprint), thumbprint being the 32-byte RFC 7638
// SHA-256 JWK thumbprint of the guest's ephemeral public key. (Without a
// key, REPORT_DATA is the nonce itself.)
func BindReportData(n Nonce, thumbprint []byte) [64]byte {
	return sha512.Sum512(append(n[:], thumbprint...))
}
