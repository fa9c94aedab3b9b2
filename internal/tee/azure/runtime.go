package azure

import (
	"bytes"
	"crypto/rsa"
	"encoding/hex"
	"encoding/json"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustgate/trustgate/internal/attest"
)

// akKeyID is the JWK key id of the vTPM attestation key in the runtime data.
const akKeyID = "HCLAkPub"

// minAKBits is the smallest attestation key accepted (Azure's vTPM AK is
// RSA-2048).
const minAKBits = 2048

// userDataSize is the size of the runtime data's user-data: the 64 bytes a
// guest writes to NV index 0x01400002 before the HCL report is made.
const userDataSize = 64

// runtimeData is the HCL runtime-data JSON, read only after the hardware
// report that binds it verified.
type runtimeData struct {
	Keys     []json.RawMessage `json:"keys"`
	VMConfig struct {
		ConsoleEnabled bool   `json:"console-enabled"`
		SecureBoot     bool   `json:"secure-boot"`
		TPMEnabled     bool   `json:"tpm-enabled"`
		VMUniqueID     string `json:"vmUniqueId"`
	} `json:"vm-configuration"`
	UserData string `json:"user-data"`
}

// parsed runtime data: the attestation key and what becomes claims.
type runtime struct {
	ak       *rsa.PublicKey
	vm       attest.AzureVM
	userData []byte
}

// parseRuntime reads the verified runtime data: exactly one HCLAkPub, an RSA
// public key of at least minAKBits; user-data, if present, 64 bytes of hex.
func parseRuntime(b []byte) (*runtime, error) {
	var rd runtimeData
	if err := json.Unmarshal(b, &rd); err != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "HCL runtime data: %w", err)
	}
	var ak *rsa.PublicKey
	for _, raw := range rd.Keys {
		var probe struct {
			Kid string `json:"kid"`
		}
		if json.Unmarshal(raw, &probe) != nil || probe.Kid != akKeyID {
			continue
		}
		if ak != nil {
			return nil, attest.Errorf(attest.ReasonMalformedEvidence, "HCL runtime data holds two %s keys", akKeyID)
		}
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil {
			return nil, attest.Errorf(attest.ReasonMalformedEvidence, "HCL runtime data %s: %w", akKeyID, err)
		}
		pub, ok := k.Key.(*rsa.PublicKey)
		if !ok || !k.IsPublic() {
			return nil, attest.Errorf(attest.ReasonMalformedEvidence, "HCL runtime data %s is not an RSA public key", akKeyID)
		}
		if pub.N.BitLen() < minAKBits {
			return nil, attest.Errorf(attest.ReasonMalformedEvidence, "HCL runtime data %s is %d bits, at least %d", akKeyID, pub.N.BitLen(), minAKBits)
		}
		ak = pub
	}
	if ak == nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "HCL runtime data has no %s key", akKeyID)
	}
	r := &runtime{ak: ak, userData: make([]byte, userDataSize), vm: attest.AzureVM{
		VMID: rd.VMConfig.VMUniqueID, SecureBoot: rd.VMConfig.SecureBoot,
		TPMEnabled: rd.VMConfig.TPMEnabled, ConsoleEnabled: rd.VMConfig.ConsoleEnabled,
	}}
	if rd.UserData != "" {
		u, err := hex.DecodeString(rd.UserData)
		if err != nil || len(u) != userDataSize {
			return nil, attest.Errorf(attest.ReasonMalformedEvidence, "HCL runtime data user-data is not %d bytes of hex", userDataSize)
		}
		r.userData = u
	}
	return r, nil
}

// zero reports whether b is all zero bytes.
func zero(b []byte) bool { return len(bytes.Trim(b, "\x00")) == 0 }
