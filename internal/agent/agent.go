package agent

import (
	"context"
	"crypto/ecdsa"
	"time"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/client"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/azure"
)

// Device produces SEV-SNP reports binding reportData, with the extended
// report's certificate table when the host provides one; a Device with a
// TEE method answering TEETDX produces TDX quotes instead (no table), one
// answering TEENitro Nitro attestation documents.
type Device interface {
	Report(ctx context.Context, reportData [64]byte) (report, certTable []byte, err error)
}

// Result is an affirmed attestation.
type Result struct {
	Token string
	// Key is the ephemeral private key bound in REPORT_DATA; secrets
	// released with Token are encrypted to it.
	Key *ecdsa.PrivateKey
}

// Attest runs challenge → report → attest once. The returned error is the
// verifier's *client.APIError on a rejection.
func Attest(ctx context.Context, c *client.Client, dev Device) (*Result, error) {
	p, err := Prepare(ctx, c, dev)
	if err != nil {
		return nil, err
	}
	resp, err := c.Attest(ctx, p.Request)
	if err != nil {
		return nil, err
	}
	return &Result{Token: resp.Token, Key: p.Key}, nil
}

// Prepared is an attest request ready to send, with the ephemeral key
// bound in its report.
type Prepared struct {
	Request v1.AttestRequest
	Key     *ecdsa.PrivateKey
	// Expires is when the request's nonce expires.
	Expires time.Time
}

// Prepare gets a challenge, makes an ephemeral P-256 key and gets a report
// binding both (SPEC rule 2) from dev.
func Prepare(ctx context.Context, c *client.Client, dev Device) (*Prepared, error) {
	ch, err := c.Challenge(ctx)
	if err != nil {
		return nil, err
	}
	key, err := NewEphemeralKey()
	if err != nil {
		return nil, err
	}
	report, table, err := dev.Report(ctx, key.ReportData(attest.Nonce(ch.Nonce)))
	if err != nil {
		return nil, &DeviceError{Err: err}
	}
	req := v1.AttestRequest{
		Nonce: ch.Nonce, TEE: v1.TEESEVSNP, Evidence: v1.SNPEvidence{Report: report, CertTable: table}, TEEPubKey: key.JWK,
	}
	switch tee := TEEOf(dev); tee {
	case TEETDX:
		req.TEE, req.Evidence = v1.TEETDX, v1.Evidence{Quote: report}
	case TEEAzureSNP, TEEAzureTDX:
		req.TEE, req.Evidence = tee, v1.Evidence{Azure: report} // the evidence JSON (SimAzureDevice)
	case TEENitro:
		req.TEE, req.Evidence = v1.TEENitro, v1.Evidence{Document: report}
	}
	return &Prepared{Request: req, Key: key.Private, Expires: ch.ExpiresAt}, nil
}

// TEEOf is the TEE of dev's evidence: what its TEE method says, else
// TEESEVSNP (a Device that returns SEV-SNP reports).
func TEEOf(dev Device) string {
	if d, ok := dev.(interface{ TEE() string }); ok {
		switch t := d.TEE(); t {
		case TEETDX, TEEAzureSNP, TEEAzureTDX, TEENitro:
			return t
		}
	}
	return TEESEVSNP
}

// SimDevice adapts a simulator (sim.Device) to Device.
type SimDevice struct {
	Sim interface {
		Report(reportData [64]byte) (report, certTable []byte)
	}
}

// Report implements Device.
func (s SimDevice) Report(_ context.Context, rd [64]byte) ([]byte, []byte, error) {
	r, t := s.Sim.Report(rd)
	return r, t, nil
}

// SimAzureDevice adapts the Azure simulator (sim.AzureDevice) to Device:
// Report returns the evidence JSON (SPEC "Azure confidential VMs").
type SimAzureDevice struct {
	Sim interface {
		Evidence(reportData [64]byte) (attest.AzureEvidence, error)
		TEE() string
	}
}

// Report implements Device.
func (s SimAzureDevice) Report(_ context.Context, rd [64]byte) ([]byte, []byte, error) {
	ev, err := s.Sim.Evidence(rd)
	if err != nil {
		return nil, nil, err
	}
	wire, err := azure.EncodeEvidence(ev)
	return wire, nil, err
}

// TEE says the device gives Azure evidence of its TEE.
func (s SimAzureDevice) TEE() string { return s.Sim.TEE() }

// SimTDXDevice adapts the TDX simulator (sim.TDXDevice) to Device: Report
// returns its quote.
type SimTDXDevice struct {
	Sim interface {
		Quote(reportData [64]byte) []byte
	}
}

// Report implements Device.
func (s SimTDXDevice) Report(_ context.Context, rd [64]byte) ([]byte, []byte, error) {
	return s.Sim.Quote(rd), nil, nil
}

// TEE says the device gives TDX quotes.
func (SimTDXDevice) TEE() string { return TEETDX }

// SimNitroDevice adapts the Nitro simulator (sim.NitroDevice) to Device:
// Report returns its attestation document.
type SimNitroDevice struct {
	Sim interface {
		Document(reportData [64]byte) ([]byte, error)
	}
}

// Report implements Device.
func (s SimNitroDevice) Report(_ context.Context, rd [64]byte) ([]byte, []byte, error) {
	doc, err := s.Sim.Document(rd)
	return doc, nil, err
}

// TEE says the device gives Nitro attestation documents.
func (SimNitroDevice) TEE() string { return TEENitro }
