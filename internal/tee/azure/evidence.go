package azure

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/trustgate/trustgate/internal/attest"
)

// MaxInputSize bounds what DecodeEvidence reads: Trustee's v0 layout writes
// every byte as a JSON number, about 40 KiB for an SNP evidence set.
const MaxInputSize = 256 << 10

// maxPCRs bounds the PCR values of a quote: one bank of 24.
const maxPCRs = 24

// wireEvidence is the evidence JSON in any of Trustee's layouts (its
// az-snp-vtpm and az-tdx-vtpm attesters): v0 writes byte arrays and names
// the SNP parts "quote" and "report"; v1 and v2 write the TPM quote's
// parts as hex and the blobs as base64url.
type wireEvidence struct {
	Version   *int       `json:"version"`
	HCLReport b64Bytes   `json:"hcl_report"`
	Report    b64Bytes   `json:"report"` // v0 SNP name of hcl_report
	TPMQuote  *wireQuote `json:"tpm_quote"`
	Quote     *wireQuote `json:"quote"` // v0 SNP name of tpm_quote
	VCEK      b64Bytes   `json:"vcek"`
	TDQuote   b64Bytes   `json:"td_quote"`
}

type wireQuote struct {
	Message   hexBytes   `json:"message"`
	Signature hexBytes   `json:"signature"`
	PCRs      []hexBytes `json:"pcrs"`
}

// DecodeEvidence reads the evidence JSON of an Azure CVM in the layout of
// SPEC "Azure confidential VMs" or any of Trustee's (v0, v1, v2). It frames
// only: nothing in it is verified.
func DecodeEvidence(b []byte) (attest.AzureEvidence, error) {
	if len(b) > MaxInputSize {
		return attest.AzureEvidence{}, attest.Errorf(attest.ReasonMalformedEvidence, "evidence is %d bytes, limit %d", len(b), MaxInputSize)
	}
	var w wireEvidence
	if err := json.Unmarshal(b, &w); err != nil {
		return attest.AzureEvidence{}, attest.Errorf(attest.ReasonMalformedEvidence, "evidence JSON: %w", err)
	}
	if w.Version != nil && (*w.Version < 0 || *w.Version > 2) {
		return attest.AzureEvidence{}, attest.Errorf(attest.ReasonUnsupportedVersion, "evidence version %d, supported 0 to 2", *w.Version)
	}
	pick := func(a, b []byte, what string) ([]byte, error) {
		if a != nil && b != nil {
			return nil, fmt.Errorf("both %s and its v0 name are present", what)
		}
		if a == nil {
			return b, nil
		}
		return a, nil
	}
	report, err := pick(w.HCLReport, w.Report, "hcl_report")
	if err != nil {
		return attest.AzureEvidence{}, attest.Errorf(attest.ReasonMalformedEvidence, "%w", err)
	}
	q := w.TPMQuote
	if q != nil && w.Quote != nil {
		return attest.AzureEvidence{}, attest.Errorf(attest.ReasonMalformedEvidence, "both tpm_quote and its v0 name are present")
	}
	if q == nil {
		q = w.Quote
	}
	if report == nil || q == nil {
		return attest.AzureEvidence{}, attest.Errorf(attest.ReasonMalformedEvidence, "evidence needs hcl_report and tpm_quote")
	}
	if len(q.PCRs) > maxPCRs {
		return attest.AzureEvidence{}, attest.Errorf(attest.ReasonMalformedEvidence, "%d PCR values, at most %d", len(q.PCRs), maxPCRs)
	}
	ev := attest.AzureEvidence{
		HCLReport: report,
		TPMQuote:  attest.TPMQuote{Message: q.Message, Signature: q.Signature, PCRs: make([][]byte, len(q.PCRs))},
		VCEK:      w.VCEK,
		TDQuote:   w.TDQuote,
	}
	for i, p := range q.PCRs {
		ev.TPMQuote.PCRs[i] = p
	}
	return ev, nil
}

// byteArray decodes a JSON array of numbers 0–255 (Trustee's v0 bytes).
func byteArray(b []byte) ([]byte, bool, error) {
	if len(b) == 0 || b[0] != '[' {
		return nil, false, nil
	}
	var ns []uint8 // encoding/json refuses numbers outside 0–255
	if err := json.Unmarshal(b, &ns); err != nil {
		return nil, true, err
	}
	return append([]byte{}, ns...), true, nil
}

// hexBytes is a byte string written as hex (or as a v0 byte array).
type hexBytes []byte

func (h *hexBytes) UnmarshalJSON(b []byte) error {
	return decodeBytes((*[]byte)(h), b, func(s string) ([]byte, error) {
		v, err := hex.DecodeString(s)
		if err != nil {
			return nil, fmt.Errorf("not hex: %w", err)
		}
		return v, nil
	})
}

// b64Bytes is a blob written as base64 (URL or standard alphabet, padded
// or not), as PEM text (a VCEK), or as a v0 byte array.
type b64Bytes []byte

func (p *b64Bytes) UnmarshalJSON(b []byte) error {
	return decodeBytes((*[]byte)(p), b, func(s string) ([]byte, error) {
		if bytes.HasPrefix(bytes.TrimSpace([]byte(s)), []byte("-----BEGIN")) {
			return []byte(s), nil
		}
		for _, enc := range []*base64.Encoding{base64.RawURLEncoding, base64.URLEncoding, base64.StdEncoding, base64.RawStdEncoding} {
			if v, err := enc.DecodeString(s); err == nil {
				return v, nil
			}
		}
		return nil, errors.New("not base64")
	})
}

// decodeBytes sets *dst from a JSON value: null leaves it nil, an array of
// numbers 0–255 is Trustee's v0 bytes, a string goes through text.
func decodeBytes(dst *[]byte, b []byte, text func(string) ([]byte, error)) error {
	if string(b) == "null" {
		return nil
	}
	if v, ok, err := byteArray(b); ok {
		*dst = v
		return err
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := text(s)
	if err != nil {
		return err
	}
	*dst = v
	return nil
}

// EncodeEvidence writes ev in the layout an Azure guest sends (SPEC "Azure
// confidential VMs", Trustee's v1: the TPM quote's parts as hex, the blobs
// as base64url, the VCEK as it is when PEM).
func EncodeEvidence(ev attest.AzureEvidence) ([]byte, error) {
	b64 := base64.URLEncoding.EncodeToString
	w := struct {
		Version   int    `json:"version"`
		HCLReport string `json:"hcl_report"`
		TPMQuote  struct {
			Signature string   `json:"signature"`
			Message   string   `json:"message"`
			PCRs      []string `json:"pcrs"`
		} `json:"tpm_quote"`
		VCEK    string `json:"vcek,omitempty"`
		TDQuote string `json:"td_quote,omitempty"`
	}{Version: 1, HCLReport: b64(ev.HCLReport)}
	w.TPMQuote.Signature = hex.EncodeToString(ev.TPMQuote.Signature)
	w.TPMQuote.Message = hex.EncodeToString(ev.TPMQuote.Message)
	w.TPMQuote.PCRs = make([]string, len(ev.TPMQuote.PCRs))
	for i, p := range ev.TPMQuote.PCRs {
		w.TPMQuote.PCRs[i] = hex.EncodeToString(p)
	}
	if bytes.HasPrefix(ev.VCEK, []byte("-----BEGIN")) {
		w.VCEK = string(ev.VCEK)
	} else if ev.VCEK != nil {
		w.VCEK = b64(ev.VCEK)
	}
	if ev.TDQuote != nil {
		w.TDQuote = b64(ev.TDQuote)
	}
	return json.Marshal(w)
}
