package attest

import (
	"encoding/json"
	"strconv"
)

// TEENitro is the "tee" of AWS Nitro Enclaves (SPEC "AWS Nitro Enclaves").
const TEENitro = "nitro"

// NitroPCRs is the number of platform configuration registers a Nitro
// enclave has and the claims carry (pcr0 … pcr15).
const NitroPCRs = 16

// NitroClaims is the flat view of one verified AWS Nitro Enclaves
// attestation document that policy sees (SPEC "AWS Nitro Enclaves"). Built
// only from a document whose COSE signature and certificate chain have
// verified. Its JSON form is flat: "pcr0" … "pcr15" stand beside the other
// claims, only for the registers the document holds.
type NitroClaims struct {
	TEE       string // "nitro"
	ModuleID  string // the issuing Nitro hypervisor module, e.g. "i-0a22e5c5f24d22174-enc01…"
	Timestamp uint64 // milliseconds since the Unix epoch, UTC, as the NSM wrote it
	Digest    string // "SHA384"
	// PCRs are the registers by index; nil for an index the document does
	// not hold. Each is 48 bytes (SHA-384).
	PCRs       [NitroPCRs]Hex
	UserData   Hex // up to 1024 bytes; nil when absent
	PublicKey  Hex // up to 1024 bytes; nil when absent
	ReportData Hex // the document's nonce: the 64 bytes of REPORT_DATA
}

// MarshalJSON renders the claims as one flat object (SPEC "Claims").
func (c *NitroClaims) MarshalJSON() ([]byte, error) {
	m := map[string]any{
		"tee":         c.TEE,
		"module_id":   c.ModuleID,
		"timestamp":   c.Timestamp,
		"digest":      c.Digest,
		"user_data":   c.UserData,
		"public_key":  c.PublicKey,
		"report_data": c.ReportData,
	}
	for i, p := range c.PCRs {
		if p != nil {
			m["pcr"+strconv.Itoa(i)] = p
		}
	}
	return json.Marshal(m)
}

// TEEName implements Verified.
func (c *NitroClaims) TEEName() string { return c.TEE }

// BoundData implements Verified: the document's nonce.
func (c *NitroClaims) BoundData() []byte { return c.ReportData }

// LaunchMeasurement implements Verified: PCR0, the enclave image file's
// measurement.
func (c *NitroClaims) LaunchMeasurement() []byte { return c.PCRs[0] }
