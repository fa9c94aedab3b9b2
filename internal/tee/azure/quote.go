package azure

import (
	"bytes"
	"crypto"
	"crypto/rsa"
	"crypto/sha256"
	"fmt"

	"github.com/google/go-tpm/tpm2"

	"github.com/trustgate/trustgate/internal/attest"
)

// quoted is a TPM quote whose signature verified and whose PCR values are
// the ones it signed.
type quoted struct {
	extraData []byte
	pcrs      map[string]attest.Hex // "pcr00" … "pcr23"
}

// maxPCRIndex is the highest PCR of a PC-client TPM (24 PCRs).
const maxPCRIndex = 23

// verifyQuote checks q under the attestation key: the RSASSA-PKCS1-v1_5
// SHA-256 signature over the message, then — and only then — the message
// as a TPMS_ATTEST (TPM 2.0 Library Part 2 §10.12.12) of type quote in its
// canonical encoding, with one SHA-256 PCR selection whose PCRs, hashed in
// selection order (ascending index), give the signed pcrDigest.
func verifyQuote(ak *rsa.PublicKey, q attest.TPMQuote) (*quoted, error) {
	sig, err := rawSignature(ak, q.Signature)
	if err != nil {
		return nil, err
	}
	digest := sha256.Sum256(q.Message)
	if err := rsa.VerifyPKCS1v15(ak, crypto.SHA256, digest[:], sig); err != nil {
		return nil, attest.Errorf(attest.ReasonSignatureInvalid, "TPM quote signature does not verify under HCLAkPub")
	}
	// From here on the message is the vTPM's.
	att, err := tpm2.Unmarshal[tpm2.TPMSAttest](q.Message)
	if err != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "TPM quote message: %w", err)
	}
	if !canonical(att, q.Message) {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "TPM quote message has bytes after its TPMS_ATTEST")
	}
	if att.Magic.Check() != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "TPM quote message is not TPM_GENERATED_VALUE")
	}
	if att.Type != tpm2.TPMSTAttestQuote {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "TPM attestation is of type %#x, not a quote", uint16(att.Type))
	}
	info, err := att.Attested.Quote()
	if err != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "TPM quote info: %w", err)
	}
	sel := info.PCRSelect.PCRSelections
	if len(sel) != 1 || sel[0].Hash != tpm2.TPMAlgSHA256 {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "TPM quote must select one SHA-256 PCR bank")
	}
	var indices []int
	for i, b := range sel[0].PCRSelect {
		for bit := range 8 {
			if b&(1<<bit) != 0 {
				indices = append(indices, 8*i+bit)
			}
		}
	}
	if len(indices) == 0 || indices[len(indices)-1] > maxPCRIndex {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "TPM quote selects PCRs %v, want some of 0–%d", indices, maxPCRIndex)
	}
	if len(indices) != len(q.PCRs) {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "TPM quote selects %d PCRs, %d values were sent", len(indices), len(q.PCRs))
	}
	h := sha256.New()
	out := &quoted{extraData: bytes.Clone(att.ExtraData.Buffer), pcrs: make(map[string]attest.Hex, len(indices))}
	for i, idx := range indices {
		if len(q.PCRs[i]) != sha256.Size {
			return nil, attest.Errorf(attest.ReasonMalformedEvidence, "PCR %d value is %d bytes, want %d", idx, len(q.PCRs[i]), sha256.Size)
		}
		h.Write(q.PCRs[i])
		out.pcrs[fmt.Sprintf("pcr%02d", idx)] = attest.Hex(bytes.Clone(q.PCRs[i]))
	}
	if !bytes.Equal(h.Sum(nil), info.PCRDigest.Buffer) {
		return nil, attest.Errorf(attest.ReasonSignatureInvalid, "the PCR values sent are not the ones the TPM quote signed")
	}
	return out, nil
}

// rawSignature returns the RSASSA signature bytes of sig: raw bytes the
// size of the key's modulus (Trustee's layout), or a TPMT_SIGNATURE (TPM
// 2.0 Library Part 2 §11.3.4) that must be RSASSA with SHA-256.
func rawSignature(ak *rsa.PublicKey, sig []byte) ([]byte, error) {
	if len(sig) == ak.Size() {
		return sig, nil
	}
	t, err := tpm2.Unmarshal[tpm2.TPMTSignature](sig)
	if err != nil {
		return nil, attest.Errorf(attest.ReasonSignatureInvalid, "TPM quote signature is neither %d raw bytes nor a TPMT_SIGNATURE: %v", ak.Size(), err)
	}
	if t.SigAlg != tpm2.TPMAlgRSASSA {
		return nil, attest.Errorf(attest.ReasonSignatureInvalid, "TPM quote signature algorithm %#x, want RSASSA", uint16(t.SigAlg))
	}
	rs, err := t.Signature.RSASSA()
	if err != nil || rs.Hash != tpm2.TPMAlgSHA256 || !canonical(t, sig) {
		return nil, attest.Errorf(attest.ReasonSignatureInvalid, "TPM quote signature is not a canonical RSASSA SHA-256 TPMT_SIGNATURE")
	}
	return rs.Sig.Buffer, nil
}

// canonical reports whether b is v's encoding, byte for byte: no bytes
// after it, nothing encoded two ways. go-tpm's Marshal panics on a value
// it cannot encode; that is a false here.
func canonical(v tpm2.Marshallable, b []byte) (ok bool) {
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	return bytes.Equal(tpm2.Marshal(v), b)
}
