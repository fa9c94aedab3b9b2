package agent

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"strings"

	"github.com/google/go-tpm/tpm2/transport"
	"github.com/google/go-tpm/tpm2/transport/linuxtpm"
	"github.com/google/go-tpm/tpm2/transport/linuxudstpm"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/azure"
	"github.com/trustgate/trustgate/internal/tee/azure/hcl"
	"github.com/trustgate/trustgate/internal/vtpm"
)

// Azure's vTPM (SPEC "Azure confidential VMs"; azure-cvm-tooling): the
// guest writes its REPORT_DATA to the user-data index, the paravisor then
// makes the HCL report in the report index, and the attestation key is a
// persistent key.
const (
	NVIndexHCLReport = vtpm.NVIndexHCLReport
	NVIndexUserData  = vtpm.NVIndexUserData
	AKHandle         = vtpm.AKHandle
)

// DefaultAzureQuoteURL is Azure's IMDS endpoint that turns a TDREPORT into
// a TD quote.
const DefaultAzureQuoteURL = "http://169.254.169.254/acc/tdquote"

// OpenVTPM opens the vTPM at path — a TPM device (/dev/tpmrm0) or a TPM's
// Unix socket (swtpm) — for tee (TEEAzureSNP or TEEAzureTDX), with Azure's
// IMDS at imdsURL for the VCEK and the TD quote. Close releases it.
func OpenVTPM(path, tee, imdsURL string) (*VTPMDevice, error) {
	if tee != TEEAzureSNP && tee != TEEAzureTDX {
		return nil, fmt.Errorf("vTPM: tee %q is not an Azure TEE", tee)
	}
	var t transport.TPMCloser
	var err error
	if fi, serr := os.Stat(path); serr == nil && fi.Mode()&os.ModeSocket != 0 {
		t, err = linuxudstpm.Open(path)
	} else {
		t, err = linuxtpm.Open(path)
	}
	if err != nil {
		return nil, fmt.Errorf("vTPM %s: %w", path, err)
	}
	imds := strings.TrimSuffix(imdsURL, "/")
	return &VTPMDevice{TPM: t, Kind: tee, QuoteURL: imds + "/acc/tdquote", VCEKURL: imds + "/metadata/THIM/amd/certification", closer: t}, nil
}

// Close releases a device OpenVTPM opened.
func (d *VTPMDevice) Close() error {
	if d.closer == nil {
		return nil
	}
	return d.closer.Close()
}

// VTPMDevice is an Azure confidential VM's vTPM as a Device: Report
// returns the evidence JSON (azure.EncodeEvidence) binding REPORT_DATA.
// It is not safe for concurrent use (one TPM session at a time).
type VTPMDevice struct {
	TPM transport.TPM
	// Kind is TEEAzureSNP or TEEAzureTDX.
	Kind string
	// QuoteURL is the host's TD quote service (azure-tdx); "" means
	// DefaultAzureQuoteURL. HTTP is the client for it; nil means
	// http.DefaultClient.
	QuoteURL string
	HTTP     *http.Client
	// VCEKURL is where the VCEK and its chain are fetched for azure-snp
	// (Azure's THIM through IMDS); "" means DefaultAzureVCEKURL. When it
	// fails the evidence goes without: the verifier fetches the VCEK from
	// AMD's KDS.
	VCEKURL string

	closer io.Closer // what OpenVTPM opened
}

// DefaultAzureVCEKURL is Azure's THIM endpoint for the VM's VCEK and its
// chain (IMDS, header Metadata: true).
const DefaultAzureVCEKURL = "http://169.254.169.254/metadata/THIM/amd/certification"

// TEE implements the TEE method Prepare asks.
func (d *VTPMDevice) TEE() string { return d.Kind }

// Report implements Device: write rd as user-data, read the HCL report
// the paravisor made, quote PCRs 0–23 (SHA-256) with the attestation key
// and rd cut to 48 bytes, read the PCRs, and for TDX ask the host's quote
// service for the TD quote of the HCL report's TDREPORT.
func (d *VTPMDevice) Report(ctx context.Context, rd [64]byte) ([]byte, []byte, error) {
	if err := vtpm.NVWrite(d.TPM, NVIndexUserData, rd[:]); err != nil {
		return nil, nil, fmt.Errorf("writing user-data to NV %#x: %w", uint32(NVIndexUserData), err)
	}
	blob, err := vtpm.NVRead(d.TPM, NVIndexHCLReport)
	if err != nil {
		return nil, nil, fmt.Errorf("reading the HCL report from NV %#x: %w", uint32(NVIndexHCLReport), err)
	}
	q, err := vtpm.Quote(d.TPM, AKHandle, rd[:attest.ExtraDataSize])
	if err != nil {
		return nil, nil, err
	}
	ev := attest.AzureEvidence{HCLReport: blob, TPMQuote: q}
	if d.Kind == TEEAzureSNP {
		ev.VCEK = d.vcek(ctx)
	}
	if d.Kind == TEEAzureTDX {
		r, err := hcl.Parse(blob)
		if err != nil {
			return nil, nil, err
		}
		if ev.TDQuote, err = d.tdQuote(ctx, r.Hardware); err != nil {
			return nil, nil, err
		}
	}
	wire, err := azure.EncodeEvidence(ev)
	return wire, nil, err
}

// vcek fetches the VCEK and its chain (PEM) from THIM: {"vcekCert": PEM,
// "certificateChain": PEM}; nil when that fails.
func (d *VTPMDevice) vcek(ctx context.Context) []byte {
	u := d.VCEKURL
	if u == "" {
		u = DefaultAzureVCEKURL
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return nil
	}
	req.Header.Set("Metadata", "true")
	resp, err := d.client().Do(req)
	if err != nil {
		return nil
	}
	defer resp.Body.Close()
	var out struct {
		VCEK  string `json:"vcekCert"`
		Chain string `json:"certificateChain"`
	}
	if resp.StatusCode != http.StatusOK || json.NewDecoder(io.LimitReader(resp.Body, 64<<10)).Decode(&out) != nil || out.VCEK == "" {
		return nil
	}
	return []byte(out.VCEK + out.Chain)
}

func (d *VTPMDevice) client() *http.Client {
	if d.HTTP == nil {
		return http.DefaultClient
	}
	return d.HTTP
}

// tdQuote asks the host's quote service for the quote of a TDREPORT:
// POST {"report": base64url} → {"quote": base64url}.
func (d *VTPMDevice) tdQuote(ctx context.Context, tdreport []byte) ([]byte, error) {
	u := d.QuoteURL
	if u == "" {
		u = DefaultAzureQuoteURL
	}
	hc := d.client()
	body, _ := json.Marshal(map[string]string{"report": base64.RawURLEncoding.EncodeToString(tdreport)})
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, u, bytes.NewReader(body))
	if err != nil {
		return nil, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := hc.Do(req)
	if err != nil {
		return nil, fmt.Errorf("TD quote service: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	if err != nil {
		return nil, err
	}
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("TD quote service: %s", resp.Status)
	}
	var out struct {
		Quote string `json:"quote"`
	}
	if err := json.Unmarshal(b, &out); err != nil {
		return nil, fmt.Errorf("TD quote service: %w", err)
	}
	q, err := base64.RawURLEncoding.DecodeString(out.Quote)
	if err != nil {
		if q, err = base64.URLEncoding.DecodeString(out.Quote); err != nil {
			return nil, fmt.Errorf("TD quote service: quote is not base64url")
		}
	}
	return q, nil
}
