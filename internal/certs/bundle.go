package certs

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"time"

	"github.com/trustgate/trustgate/internal/tee/snp"
)

// BundleFormat is the format tag of a certificate bundle.
const BundleFormat = "trustgate-certs-bundle/v1"

// MaxBundleSize bounds a bundle file that ReadBundle accepts.
const MaxBundleSize = 64 << 20

// Bundle is what `trustgate certs fetch` writes and `trustgate certs import`
// loads, for verifiers without KDS access: one JSON document holding VCEKs,
// CRLs and the KDS certificate chains, each as the KDS served it
// (byte strings are base64 in JSON, as encoding/json writes []byte).
// Nothing in it is trusted on import: VCEKs must chain to the pinned ASK,
// CRLs must be signed by the pinned ARK, chains must be the pinned ones.
type Bundle struct {
	Format  string        `json:"format"`  // BundleFormat
	Created time.Time     `json:"created"` // when the bundle was written
	VCEKs   []BundleVCEK  `json:"vceks,omitempty"`
	CRLs    []BundleCRL   `json:"crls,omitempty"`
	Chains  []BundleChain `json:"chains,omitempty"`
	// TDX is Intel TDX collateral (a JSON array of pcs.BundleEntry),
	// carried for `trustgate certs import`, which has internal/pcs verify
	// and store it; certs does not read it.
	TDX json.RawMessage `json:"tdx,omitempty"`
}

// BundleVCEK is one VCEK and the chip and TCB it was fetched for.
type BundleVCEK struct {
	Product   snp.Product `json:"product"`
	HWID      string      `json:"hwid"` // lowercase hex: CHIP_ID (64 bytes), CHIP_ID[0:8] on Turin
	TCB       string      `json:"tcb"`  // REPORTED_TCB as a raw TCB_VERSION, 16 hex digits
	FetchedAt time.Time   `json:"fetched_at"`
	DER       []byte      `json:"der"`
}

// BundleCRL is one of AMD's CRLs (DER).
type BundleCRL struct {
	Product   snp.Product `json:"product"`
	Signer    snp.Signer  `json:"signer"` // "vcek": /vcek/v1/{product}/crl; "vlek": /vlek/v1/{product}/crl
	FetchedAt time.Time   `json:"fetched_at"`
	DER       []byte      `json:"der"`
}

// BundleChain is a KDS cert_chain body: PEM, intermediate (ASK or ASVK)
// then ARK.
type BundleChain struct {
	Product snp.Product `json:"product"`
	Signer  snp.Signer  `json:"signer"`
	PEM     string      `json:"pem"`
}

// ChainRef names a product's certificate chain and CRL: the VCEK (ASK)
// or VLEK (ASVK) one.
type ChainRef struct {
	Product snp.Product
	Signer  snp.Signer
}

// ReadBundle decodes a bundle (at most MaxBundleSize bytes) and checks its
// format tag. It verifies nothing else; Import does.
func ReadBundle(r io.Reader) (*Bundle, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxBundleSize+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxBundleSize {
		return nil, fmt.Errorf("bundle exceeds %d bytes", MaxBundleSize)
	}
	var bu Bundle
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&bu); err != nil {
		return nil, fmt.Errorf("not a certificate bundle: %w", err)
	}
	if bu.Format != BundleFormat {
		return nil, fmt.Errorf("bundle format %q, want %q", bu.Format, BundleFormat)
	}
	return &bu, nil
}

// Write encodes b as indented JSON.
func (b *Bundle) Write(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(b)
}
