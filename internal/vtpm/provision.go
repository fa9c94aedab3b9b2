package vtpm

import (
	"crypto/rsa"
	"errors"
	"math/big"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"
)

// akTemplate is an RSA-2048 restricted signing key, RSASSA SHA-256, as
// Azure's vTPM attestation key.
var akTemplate = tpm2.TPMTPublic{
	Type:    tpm2.TPMAlgRSA,
	NameAlg: tpm2.TPMAlgSHA256,
	ObjectAttributes: tpm2.TPMAObject{
		FixedTPM: true, FixedParent: true, SensitiveDataOrigin: true, UserWithAuth: true,
		Restricted: true, SignEncrypt: true,
	},
	Parameters: tpm2.NewTPMUPublicParms(tpm2.TPMAlgRSA, &tpm2.TPMSRSAParms{
		Scheme: tpm2.TPMTRSAScheme{
			Scheme:  tpm2.TPMAlgRSASSA,
			Details: tpm2.NewTPMUAsymScheme(tpm2.TPMAlgRSASSA, &tpm2.TPMSSigSchemeRSASSA{HashAlg: tpm2.TPMAlgSHA256}),
		},
		KeyBits: 2048,
	}),
	Unique: tpm2.NewTPMUPublicID(tpm2.TPMAlgRSA, &tpm2.TPM2BPublicKeyRSA{Buffer: make([]byte, 256)}),
}

// Provision prepares a TPM as Azure's paravisor prepares the vTPM: the
// attestation key at AKHandle, the user-data index (64 bytes) and the HCL
// report index of reportSize bytes, both owner-readable and -writable.
func Provision(t transport.TPM, reportSize uint16) error {
	created, err := tpm2.CreatePrimary{PrimaryHandle: tpm2.TPMRHOwner, InPublic: tpm2.New2B(akTemplate)}.Execute(t)
	if err != nil {
		return err
	}
	defer tpm2.FlushContext{FlushHandle: created.ObjectHandle}.Execute(t)
	if _, err := (tpm2.EvictControl{
		Auth:             tpm2.TPMRHOwner,
		ObjectHandle:     tpm2.NamedHandle{Handle: created.ObjectHandle, Name: created.Name},
		PersistentHandle: AKHandle,
	}).Execute(t); err != nil {
		return err
	}
	for _, ix := range []struct {
		h    tpm2.TPMHandle
		size uint16
	}{{NVIndexUserData, 64}, {NVIndexHCLReport, reportSize}} {
		if _, err := (tpm2.NVDefineSpace{
			AuthHandle: tpm2.TPMRHOwner,
			PublicInfo: tpm2.New2B(tpm2.TPMSNVPublic{
				NVIndex: ix.h, NameAlg: tpm2.TPMAlgSHA256,
				Attributes: tpm2.TPMANV{OwnerWrite: true, OwnerRead: true, AuthWrite: true, AuthRead: true, NT: tpm2.TPMNTOrdinary, NoDA: true},
				DataSize:   ix.size,
			}),
		}).Execute(t); err != nil {
			return err
		}
	}
	return nil
}

// AKPublic reads the attestation key's public RSA key.
func AKPublic(t transport.TPM, ak tpm2.TPMHandle) (*rsa.PublicKey, error) {
	rp, err := tpm2.ReadPublic{ObjectHandle: ak}.Execute(t)
	if err != nil {
		return nil, err
	}
	pub, err := rp.OutPublic.Contents()
	if err != nil {
		return nil, err
	}
	parms, err := pub.Parameters.RSADetail()
	if err != nil {
		return nil, err
	}
	n, err := pub.Unique.RSA()
	if err != nil {
		return nil, err
	}
	e := int(parms.Exponent)
	if e == 0 {
		e = 65537
	}
	if len(n.Buffer) == 0 {
		return nil, errors.New("attestation key has no modulus")
	}
	return &rsa.PublicKey{N: new(big.Int).SetBytes(n.Buffer), E: e}, nil
}
