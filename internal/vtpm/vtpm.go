// Package vtpm talks to a TPM 2.0 through go-tpm the way Azure's vTPM is
// used for attestation (SPEC "Azure confidential VMs"): NV indices read
// and written with owner authorisation, a quote of PCRs 0–23 by a
// persistent attestation key, and — for the simulator — provisioning a
// TPM (swtpm) as Azure provisions its vTPM.
package vtpm

import (
	"errors"
	"fmt"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/trustgate/trustgate/internal/attest"
)

// Azure's vTPM handles (azure-cvm-tooling): the HCL report index, the
// user-data index the guest writes, the attestation key.
const (
	NVIndexHCLReport tpm2.TPMHandle = 0x01400001
	NVIndexUserData  tpm2.TPMHandle = 0x01400002
	AKHandle         tpm2.TPMHandle = 0x81000003
)

// nvChunk is how much one TPM2_NV_Read or NV_Write moves (within every
// TPM's TPM_PT_NV_BUFFER_MAX).
const nvChunk = 1024

// NVWrite writes b at offset 0 of index with owner authorisation.
func NVWrite(t transport.TPM, index tpm2.TPMHandle, b []byte) error {
	pub, err := tpm2.NVReadPublic{NVIndex: index}.Execute(t)
	if err != nil {
		return err
	}
	for off := 0; off < len(b); off += nvChunk {
		end := min(off+nvChunk, len(b))
		if _, err := (tpm2.NVWrite{
			AuthHandle: tpm2.TPMRHOwner,
			NVIndex:    tpm2.NamedHandle{Handle: index, Name: pub.NVName},
			Data:       tpm2.TPM2BMaxNVBuffer{Buffer: b[off:end]},
			Offset:     uint16(off),
		}).Execute(t); err != nil {
			return err
		}
	}
	return nil
}

// NVRead reads the whole of index with owner authorisation.
func NVRead(t transport.TPM, index tpm2.TPMHandle) ([]byte, error) {
	pub, err := tpm2.NVReadPublic{NVIndex: index}.Execute(t)
	if err != nil {
		return nil, err
	}
	info, err := pub.NVPublic.Contents()
	if err != nil {
		return nil, err
	}
	var out []byte
	for off := 0; off < int(info.DataSize); off += nvChunk {
		n := min(nvChunk, int(info.DataSize)-off)
		r, err := tpm2.NVRead{
			AuthHandle: tpm2.TPMRHOwner,
			NVIndex:    tpm2.NamedHandle{Handle: index, Name: pub.NVName},
			Size:       uint16(n),
			Offset:     uint16(off),
		}.Execute(t)
		if err != nil {
			return nil, err
		}
		out = append(out, r.Data.Buffer...)
	}
	return out, nil
}

// allPCRs selects PCRs 0–23 of the SHA-256 bank.
var allPCRs = tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: []byte{0xff, 0xff, 0xff}}}}

// Quote quotes PCRs 0–23 with the attestation key ak and extraData, and reads
// the PCR values (TPM2_PCR_Read returns up to 8 per call).
func Quote(t transport.TPM, ak tpm2.TPMHandle, extraData []byte) (attest.TPMQuote, error) {
	pub, err := tpm2.ReadPublic{ObjectHandle: ak}.Execute(t)
	if err != nil {
		return attest.TPMQuote{}, fmt.Errorf("attestation key %#x: %w", uint32(ak), err)
	}
	rsp, err := tpm2.Quote{
		SignHandle:     tpm2.AuthHandle{Handle: ak, Name: pub.Name, Auth: tpm2.PasswordAuth(nil)},
		QualifyingData: tpm2.TPM2BData{Buffer: extraData},
		InScheme:       tpm2.TPMTSigScheme{Scheme: tpm2.TPMAlgNull},
		PCRSelect:      allPCRs,
	}.Execute(t)
	if err != nil {
		return attest.TPMQuote{}, fmt.Errorf("TPM2_Quote: %w", err)
	}
	rs, err := rsp.Signature.Signature.RSASSA()
	if err != nil {
		return attest.TPMQuote{}, fmt.Errorf("TPM2_Quote: the attestation key does not sign RSASSA: %w", err)
	}
	q := attest.TPMQuote{Message: rsp.Quoted.Bytes(), Signature: rs.Sig.Buffer}
	for len(q.PCRs) < 24 {
		sel := []byte{0, 0, 0}
		for i := len(q.PCRs); i < 24; i++ {
			sel[i/8] |= 1 << (i % 8)
		}
		r, err := tpm2.PCRRead{PCRSelectionIn: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: sel}}}}.Execute(t)
		if err != nil {
			return attest.TPMQuote{}, fmt.Errorf("TPM2_PCR_Read: %w", err)
		}
		if len(r.PCRValues.Digests) == 0 {
			return attest.TPMQuote{}, errors.New("TPM2_PCR_Read returned no PCR")
		}
		for _, dg := range r.PCRValues.Digests {
			q.PCRs = append(q.PCRs, dg.Buffer)
		}
	}
	return q, nil
}
