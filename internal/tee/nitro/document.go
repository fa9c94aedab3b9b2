package nitro

import (
	"fmt"

	"github.com/fxamacker/cbor/v2"
	"github.com/veraison/go-cose"

	"github.com/trustgate/trustgate/internal/attest"
)

// Bounds of an attestation document (AWS Nitro Enclaves, "Attestation
// document specification"). A document the NSM makes is under 12 KiB even
// with user_data, public_key and nonce at their 1024-byte limit.
const (
	// MaxDocumentSize bounds a COSE_Sign1 document, in bytes.
	MaxDocumentSize = 32 << 10
	// MaxCertSize bounds one DER certificate (AWS: 1..1024 bytes).
	MaxCertSize = 1024
	// MaxCABundle bounds the certificates of cabundle (AWS sends the root,
	// a regional, a zonal and an instance certificate).
	MaxCABundle = 8
	// MaxUserData bounds public_key, user_data and nonce (AWS: 0..1024).
	MaxUserData = 1024
	// MaxModuleID bounds module_id, in bytes.
	MaxModuleID = 256
	// MaxPCRIndex is the highest PCR index a document may name (AWS: 0..31).
	MaxPCRIndex = 31
	// PCRSize is the size of a PCR under digest SHA384.
	PCRSize = 48
)

// payloadMode decodes a document's payload: no duplicate keys, no
// indefinite lengths, no tags, no field beyond the document's nine, and
// small containers.
var payloadMode = func() cbor.DecMode {
	m, err := cbor.DecOptions{
		DupMapKey:         cbor.DupMapKeyEnforcedAPF,
		IndefLength:       cbor.IndefLengthForbidden,
		TagsMd:            cbor.TagsForbidden,
		MaxNestedLevels:   4,
		MaxArrayElements:  16,
		MaxMapPairs:       MaxPCRIndex + 1,
		ExtraReturnErrors: cbor.ExtraDecErrorUnknownField,
		FieldNameMatching: cbor.FieldNameMatchingCaseSensitive,
		UTF8:              cbor.UTF8RejectInvalid,
	}.DecMode()
	if err != nil {
		panic(err)
	}
	return m
}()

// CBOR major types (RFC 8949, section 3.1).
const (
	majorUint = 0
	majorBstr = 2
	majorText = 3
	cborNull  = 0xf6
)

func major(raw cbor.RawMessage) int {
	if len(raw) == 0 {
		return -1
	}
	return int(raw[0] >> 5)
}

// bstr is a CBOR byte string, refused when it is any other type (CBOR text
// would otherwise decode into []byte too).
type bstr []byte

func (b *bstr) UnmarshalCBOR(data []byte) error {
	if major(data) != majorBstr {
		return fmt.Errorf("want a byte string, got major type %d", major(data))
	}
	return payloadMode.Unmarshal(data, (*[]byte)(b))
}

// envelope is a document's payload as read before its signature verifies:
// the certificate and CA bundle, which the chain to the pinned root
// authenticates, and every other field kept as raw, unread CBOR.
type envelope struct {
	ModuleID    cbor.RawMessage `cbor:"module_id"`
	Timestamp   cbor.RawMessage `cbor:"timestamp"`
	Digest      cbor.RawMessage `cbor:"digest"`
	PCRs        cbor.RawMessage `cbor:"pcrs"`
	Certificate bstr            `cbor:"certificate"`
	CABundle    []bstr          `cbor:"cabundle"`
	PublicKey   cbor.RawMessage `cbor:"public_key"`
	UserData    cbor.RawMessage `cbor:"user_data"`
	Nonce       cbor.RawMessage `cbor:"nonce"`
}

// framed is a document decoded as far as it may be before its signature
// verifies.
type framed struct {
	msg *cose.UntaggedSign1Message
	env envelope
}

// frame decodes a COSE_Sign1 (untagged, as the NSM writes it, or with tag
// 18), checks that its protected header names ES384, and decodes the
// payload's envelope.
func frame(doc []byte) (*framed, error) {
	if len(doc) > MaxDocumentSize {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "document is %d bytes, limit %d", len(doc), MaxDocumentSize)
	}
	msg := new(cose.UntaggedSign1Message)
	var err error
	if len(doc) > 0 && doc[0] == 0xd2 { // tag 18, COSE_Sign1
		err = (*cose.Sign1Message)(msg).UnmarshalCBOR(doc)
	} else {
		err = msg.UnmarshalCBOR(doc)
	}
	if err != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "not a COSE_Sign1: %w", err)
	}
	alg, err := msg.Headers.Protected.Algorithm()
	if err != nil || alg != cose.AlgorithmES384 {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "protected header algorithm is %v, want ES384", alg)
	}
	f := &framed{msg: msg}
	if err := payloadMode.Unmarshal(msg.Payload, &f.env); err != nil {
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "payload: %w", err)
	}
	e := &f.env
	switch {
	case len(e.Certificate) == 0 || len(e.Certificate) > MaxCertSize:
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "certificate is %d bytes, want 1 to %d", len(e.Certificate), MaxCertSize)
	case len(e.CABundle) == 0 || len(e.CABundle) > MaxCABundle:
		return nil, attest.Errorf(attest.ReasonMalformedEvidence, "cabundle holds %d certificates, want 1 to %d", len(e.CABundle), MaxCABundle)
	}
	for i, c := range e.CABundle {
		if len(c) == 0 || len(c) > MaxCertSize {
			return nil, attest.Errorf(attest.ReasonMalformedEvidence, "cabundle[%d] is %d bytes, want 1 to %d", i, len(c), MaxCertSize)
		}
	}
	return f, nil
}

// document is the payload's other fields, decoded strictly once the
// signature over them has verified.
type document struct {
	moduleID  string
	timestamp uint64
	digest    string
	pcrs      map[uint64]bstr
	publicKey []byte
	userData  []byte
	nonce     []byte
}

// fields decodes the envelope's signed fields: module_id (text, 1 to
// MaxModuleID bytes), timestamp (unsigned, not 0), digest ("SHA384"), pcrs
// (1 to 32 of index 0..31 → 48 bytes), and the optional public_key,
// user_data and nonce (absent, null, or up to MaxUserData bytes).
func (e *envelope) fields() (*document, error) {
	bad := func(format string, args ...any) error {
		return attest.Errorf(attest.ReasonMalformedEvidence, format, args...)
	}
	var d document
	if major(e.ModuleID) != majorText || payloadMode.Unmarshal(e.ModuleID, &d.moduleID) != nil ||
		len(d.moduleID) == 0 || len(d.moduleID) > MaxModuleID {
		return nil, bad("module_id is not a text of 1 to %d bytes", MaxModuleID)
	}
	if major(e.Timestamp) != majorUint || payloadMode.Unmarshal(e.Timestamp, &d.timestamp) != nil || d.timestamp == 0 {
		return nil, bad("timestamp is not a positive integer")
	}
	if major(e.Digest) != majorText || payloadMode.Unmarshal(e.Digest, &d.digest) != nil {
		return nil, bad("digest is not a text")
	}
	if d.digest != "SHA384" {
		return nil, bad("digest is %q, want SHA384", d.digest)
	}
	if e.PCRs == nil || payloadMode.Unmarshal(e.PCRs, &d.pcrs) != nil || len(d.pcrs) == 0 {
		return nil, bad("pcrs is not a map of PCR index to byte string")
	}
	for i, p := range d.pcrs {
		if i > MaxPCRIndex || len(p) != PCRSize {
			return nil, bad("PCR%d is %d bytes; want index 0 to %d of %d bytes", i, len(p), MaxPCRIndex, PCRSize)
		}
	}
	for _, o := range []struct {
		name string
		raw  cbor.RawMessage
		to   *[]byte
	}{{"public_key", e.PublicKey, &d.publicKey}, {"user_data", e.UserData, &d.userData}, {"nonce", e.Nonce, &d.nonce}} {
		if o.raw == nil || (len(o.raw) == 1 && o.raw[0] == cborNull) {
			continue
		}
		var b bstr
		if err := b.UnmarshalCBOR(o.raw); err != nil || len(b) > MaxUserData {
			return nil, bad("%s is not null or a byte string of at most %d bytes", o.name, MaxUserData)
		}
		*o.to = b
	}
	return &d, nil
}
