package attest

// TEENitro is the "tee" of AWS Nitro Enclaves (SPEC "AWS Nitro Enclaves").
const TEENitro = "nitro"

// NitroPCRs is the number of platform configuration registers a Nitro
// enclave has and the claims carry (pcr0 … pcr15).
const NitroPCRs = 16

// NitroClaims is the flat view of one verified AWS Nitro Enclaves
// attestation document that policy sees (SPEC "AWS Nitro Enclaves"). Built
// only from a document whose COSE signature and certificate chain have
// verified. A PCR the document does not hold is nil, left out of the JSON;
// each one it holds is 48 bytes (SHA-384).
type NitroClaims struct {
	TEE        string `json:"tee"`       // "nitro"
	ModuleID   string `json:"module_id"` // the issuing Nitro hypervisor module, e.g. "i-0a22e5c5f24d22174-enc01…"
	Timestamp  uint64 `json:"timestamp"` // milliseconds since the Unix epoch, UTC, as the NSM wrote it
	Digest     string `json:"digest"`    // "SHA384"
	PCR0       Hex    `json:"pcr0,omitempty"`
	PCR1       Hex    `json:"pcr1,omitempty"`
	PCR2       Hex    `json:"pcr2,omitempty"`
	PCR3       Hex    `json:"pcr3,omitempty"`
	PCR4       Hex    `json:"pcr4,omitempty"`
	PCR5       Hex    `json:"pcr5,omitempty"`
	PCR6       Hex    `json:"pcr6,omitempty"`
	PCR7       Hex    `json:"pcr7,omitempty"`
	PCR8       Hex    `json:"pcr8,omitempty"`
	PCR9       Hex    `json:"pcr9,omitempty"`
	PCR10      Hex    `json:"pcr10,omitempty"`
	PCR11      Hex    `json:"pcr11,omitempty"`
	PCR12      Hex    `json:"pcr12,omitempty"`
	PCR13      Hex    `json:"pcr13,omitempty"`
	PCR14      Hex    `json:"pcr14,omitempty"`
	PCR15      Hex    `json:"pcr15,omitempty"`
	UserData   Hex    `json:"user_data"`   // up to 1024 bytes; nil when absent
	PublicKey  Hex    `json:"public_key"`  // up to 1024 bytes; nil when absent
	ReportData Hex    `json:"report_data"` // the document's nonce: REPORT_DATA
}

// PCR returns the field of PCR i (0 ≤ i < NitroPCRs).
func (c *NitroClaims) PCR(i int) *Hex {
	return [NitroPCRs]*Hex{&c.PCR0, &c.PCR1, &c.PCR2, &c.PCR3, &c.PCR4, &c.PCR5, &c.PCR6, &c.PCR7,
		&c.PCR8, &c.PCR9, &c.PCR10, &c.PCR11, &c.PCR12, &c.PCR13, &c.PCR14, &c.PCR15}[i]
}

// TEEName implements Verified.
func (c *NitroClaims) TEEName() string { return c.TEE }

// BoundData implements Verified: the document's nonce.
func (c *NitroClaims) BoundData() []byte { return c.ReportData }

// LaunchMeasurement implements Verified: PCR0, the enclave image file's
// measurement.
func (c *NitroClaims) LaunchMeasurement() []byte { return c.PCR0 }
