package agent

import (
	"context"
	"crypto/ecdsa"
	"time"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/client"
	"github.com/trustgate/trustgate/internal/attest"
)

// Device produces SEV-SNP reports binding reportData, with the extended
// report's certificate table when the host provides one.
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
	return &Prepared{
		Request: v1.AttestRequest{
			Nonce: ch.Nonce, TEE: v1.TEESEVSNP, Evidence: v1.SNPEvidence{Report: report, CertTable: table}, TEEPubKey: key.JWK,
		},
		Key: key.Private, Expires: ch.ExpiresAt,
	}, nil
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
