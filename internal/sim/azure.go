package sim

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"encoding/pem"
	"fmt"

	jose "github.com/go-jose/go-jose/v4"
	"github.com/google/go-tpm/tpm2"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/azure/hcl"
)

// The Azure simulator: a simulated Azure confidential VM (SPEC "Azure
// confidential VMs"). Its paravisor makes an HCL report whose hardware
// report — an SEV-SNP report of the simulated AMD chain, or a TD quote of
// the TDX simulator — binds the runtime data (the vTPM attestation key and
// the user-data); its vTPM quotes 24 SHA-256 PCRs with that key. A
// verifier accepts it only with --dev-simulator, as for the bare TEEs.

// AzureDevice is a simulated Azure CVM: azure-snp (SNP set) or azure-tdx
// (TDX set). It is safe for concurrent use.
type AzureDevice struct {
	snp  *Device
	tdx  *TDXDevice
	ak   *rsa.PrivateKey
	pcrs [24][32]byte
	vmID string
}

// AzureOptions shapes a simulated Azure CVM; the zero value is a
// production-like VM with DefaultPCRs.
type AzureOptions struct {
	// PCRs are the vTPM's PCR values; nil means DefaultPCRs.
	PCRs *[24][32]byte
	// AK is the vTPM attestation key; nil means a fresh RSA-2048 key.
	AK *rsa.PrivateKey
}

// DefaultPCRs are the PCRs of a simulated Azure CVM when none are given:
// PCR i holds 32 bytes of i+0xa0.
func DefaultPCRs() [24][32]byte {
	var p [24][32]byte
	for i := range p {
		for j := range p[i] {
			p[i][j] = byte(0xa0 + i)
		}
	}
	return p
}

// NewAzureSNP returns a simulated Azure SEV-SNP CVM on a simulated Milan
// device shaped by o.
func NewAzureSNP(o Options, a AzureOptions) (*AzureDevice, error) {
	d, err := New(o)
	if err != nil {
		return nil, err
	}
	return newAzure(a, d, nil)
}

// NewAzureTDX returns a simulated Azure TDX CVM on the TDX simulator.
func NewAzureTDX(o TDXOptions, a AzureOptions) (*AzureDevice, error) {
	d, err := NewTDX(o)
	if err != nil {
		return nil, err
	}
	return newAzure(a, nil, d)
}

func newAzure(a AzureOptions, s *Device, t *TDXDevice) (*AzureDevice, error) {
	d := &AzureDevice{snp: s, tdx: t, ak: a.AK, pcrs: DefaultPCRs()}
	if a.PCRs != nil {
		d.pcrs = *a.PCRs
	}
	if d.ak == nil {
		k, err := rsa.GenerateKey(rand.Reader, 2048)
		if err != nil {
			return nil, err
		}
		d.ak = k
	}
	var id [16]byte
	rand.Read(id[:])
	d.vmID = fmt.Sprintf("%X-%X-%X-%X-%X", id[0:4], id[4:6], id[6:8], id[8:10], id[10:])
	return d, nil
}

// TEE is the device's tee name: attest.TEEAzureSNP or attest.TEEAzureTDX.
func (d *AzureDevice) TEE() string {
	if d.tdx != nil {
		return attest.TEEAzureTDX
	}
	return attest.TEEAzureSNP
}

// Evidence returns the evidence of one attestation binding reportData, as
// the agent collects it on Azure: the guest writes reportData to the vTPM
// (user-data), the paravisor makes the HCL report, the vTPM quotes the PCRs
// with reportData cut to 48 bytes as extraData.
func (d *AzureDevice) Evidence(reportData [64]byte) (attest.AzureEvidence, error) {
	ev, err := d.HCLEvidence(&d.ak.PublicKey, reportData)
	if err != nil {
		return ev, err
	}
	q, err := SimulatedQuote(d.ak, d.pcrs, reportData[:attest.ExtraDataSize])
	if err != nil {
		return ev, err
	}
	ev.TPMQuote = q
	return ev, nil
}

// HCLEvidence returns what the paravisor makes for an attestation key and
// user-data: the HCL report and, for SEV-SNP, the VCEK with ASK and ARK
// (PEM, as Azure's THIM serves them), or, for TDX, the TD quote. The TPM
// quote is left to the caller (a real TPM in the agent's tests).
func (d *AzureDevice) HCLEvidence(ak *rsa.PublicKey, userData [64]byte) (attest.AzureEvidence, error) {
	runtime, err := RuntimeData(ak, userData, d.vmID)
	if err != nil {
		return attest.AzureEvidence{}, err
	}
	var bound [64]byte
	sum := sha256.Sum256(runtime)
	copy(bound[:], sum[:])
	if d.tdx != nil {
		q := d.tdx.Quote(bound)
		// The TDREPORT the quote was made from is not checked by
		// verifiers; the simulator leaves the report area zero.
		return attest.AzureEvidence{HCLReport: hcl.Build(hcl.TypeTDX, nil, runtime), TDQuote: q}, nil
	}
	report, _ := d.snp.Report(bound)
	var vcek []byte
	for _, der := range [][]byte{d.snp.chain.vcek, d.snp.chain.ask, d.snp.chain.ark} {
		vcek = append(vcek, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})...)
	}
	return attest.AzureEvidence{HCLReport: hcl.Build(hcl.TypeSNP, report, runtime), VCEK: vcek}, nil
}

// RuntimeData is the HCL runtime-data JSON of a VM: the attestation key as
// the JWK HCLAkPub, the VM configuration, and userData as user-data.
func RuntimeData(ak *rsa.PublicKey, userData [64]byte, vmID string) ([]byte, error) {
	jwk, err := json.Marshal(jose.JSONWebKey{Key: ak, KeyID: "HCLAkPub"})
	if err != nil {
		return nil, err
	}
	return json.Marshal(map[string]any{
		"keys": []json.RawMessage{jwk},
		"vm-configuration": map[string]any{
			"console-enabled": false, "secure-boot": true, "tpm-enabled": true, "vmUniqueId": vmID,
		},
		"user-data": hex.EncodeToString(userData[:]),
	})
}

// SimulatedQuote is a TPM2_Quote of PCRs 0–23 (SHA-256 bank) with
// extraData, signed RSASSA-PKCS1-v1_5 SHA-256 by ak, as a vTPM makes it
// (TPM 2.0 Library Part 2 §10.12.12, Part 3 §18.4).
func SimulatedQuote(ak *rsa.PrivateKey, pcrs [24][32]byte, extraData []byte) (attest.TPMQuote, error) {
	h := sha256.New()
	values := make([][]byte, len(pcrs))
	for i := range pcrs {
		values[i] = append([]byte{}, pcrs[i][:]...)
		h.Write(values[i])
	}
	msg := tpm2.Marshal(&tpm2.TPMSAttest{
		Magic:           tpm2.TPMGeneratedValue,
		Type:            tpm2.TPMSTAttestQuote,
		QualifiedSigner: tpm2.TPM2BName{Buffer: []byte{0, 0x0b}},
		ExtraData:       tpm2.TPM2BData{Buffer: extraData},
		ClockInfo:       tpm2.TPMSClockInfo{Safe: true},
		Attested: tpm2.NewTPMUAttest(tpm2.TPMSTAttestQuote, &tpm2.TPMSQuoteInfo{
			PCRSelect: tpm2.TPMLPCRSelection{PCRSelections: []tpm2.TPMSPCRSelection{{Hash: tpm2.TPMAlgSHA256, PCRSelect: []byte{0xff, 0xff, 0xff}}}},
			PCRDigest: tpm2.TPM2BDigest{Buffer: h.Sum(nil)},
		}),
	})
	digest := sha256.Sum256(msg)
	sig, err := rsa.SignPKCS1v15(rand.Reader, ak, crypto.SHA256, digest[:])
	if err != nil {
		return attest.TPMQuote{}, err
	}
	return attest.TPMQuote{Message: msg, Signature: sig, PCRs: values}, nil
}
