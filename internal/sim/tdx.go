package sim

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/sha256"
	"fmt"
	"sync"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/tdx"
)

// The TDX simulator: a simulated TD whose quotes are made by a test-only
// Intel-like PKI (root, PCK Platform CA, PCK, TCB signing certificate, QE
// and attestation keys) with fixed keys, derived from fixed labels, so that
// a verifier and a guest that never met agree on it. Its certificates are
// valid from 2025-01-01 for 25 years. A verifier accepts its quotes only
// when it trusts TDXRoots (`trustgate serve --dev-simulator`), with
// collateral the simulator signs itself (TDXCollateralSource); every other
// check applies as for Intel's platforms.

// tdxEpoch is when the simulator's certificates were issued.
var tdxEpoch = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)

// TDXKey derives the simulator's key i (0 root, 1 PCK CA, 2 PCK, 3 TCB
// signing, 4 attestation key) from a fixed label.
func TDXKey(i int) (*ecdsa.PrivateKey, error) {
	var err error
	for n := 0; n < 8; n++ {
		d := sha256.Sum256([]byte(fmt.Sprintf("trustgate TDX simulator key %d/%d", i, n)))
		var k *ecdsa.PrivateKey
		if k, err = ecdsa.ParseRawPrivateKey(elliptic.P256(), d[:]); err == nil {
			return k, nil
		}
	}
	return nil, err
}

var (
	tdxOnce  sync.Once
	tdxChain *TDXChain
	tdxErr   error
)

// simTDXChain returns the simulator's PKI, made once.
func simTDXChain() (*TDXChain, error) {
	tdxOnce.Do(func() {
		tdxChain, tdxErr = NewTDXChain(TDXChainOptions{Created: tdxEpoch, Validity: 25 * 365 * 24 * time.Hour, Keys: TDXKey})
		if tdxErr != nil {
			tdxErr = fmt.Errorf("simulated Intel PKI: %w", tdxErr)
		}
	})
	return tdxChain, tdxErr
}

// TDXRoots returns the simulator's root and TCB signing certificate, the
// trust anchor of a --dev-simulator verifier's simulated TDX verifier.
func TDXRoots() (*tdx.Roots, error) {
	c, err := simTDXChain()
	if err != nil {
		return nil, err
	}
	return c.Roots, nil
}

// TDXOptions shapes a simulated TD; the zero value is a production-like TD
// (not debuggable) with MRTD DefaultMeasurement, RTMRs zero, quotes of
// version 4, TCB UpToDate under the simulator's collateral.
type TDXOptions struct {
	MRTD  *[48]byte
	RTMR  [4][48]byte
	Debug bool
	// Version is the quote version, 4 (0 means 4) or 5 (a TDX 1.5 body).
	Version uint16
}

// TDXDevice is a simulated TDX guest. It is safe for concurrent use.
type TDXDevice struct {
	chain  *TDXChain
	fields TDXQuoteFields
}

// NewTDX returns a simulated TD of the simulator's platform.
func NewTDX(o TDXOptions) (*TDXDevice, error) {
	c, err := simTDXChain()
	if err != nil {
		return nil, err
	}
	if o.Version != 0 && o.Version != 4 && o.Version != 5 {
		return nil, fmt.Errorf("TDX quote version %d: want 4 or 5", o.Version)
	}
	m := DefaultMeasurement
	if o.MRTD != nil {
		m = *o.MRTD
	}
	f := TDXQuoteFields{Version: o.Version, MRTD: &m, RTMR: o.RTMR}
	if o.Debug {
		f.TDAttributes = 1 // TUD.DEBUG
	}
	return &TDXDevice{chain: c, fields: f}, nil
}

// Quote returns a quote binding reportData (TDREPORT's REPORTDATA), as the
// TD's configfs-tsm outblob would be.
func (d *TDXDevice) Quote(reportData [64]byte) []byte {
	f := d.fields
	f.ReportData = reportData
	return d.chain.Quote(f)
}

// TDXCollateralSource is a tdx.CollateralSource serving collateral the
// simulator signs itself for its platform: TCB info (the simulated TD is
// UpToDate), TD QE identity and empty CRLs, issued an hour before the time
// of the request and current for 30 days; it is made again once a day.
// Another FMSPC than the simulator's is collateral_unavailable. The zero
// value is ready to use.
type TDXCollateralSource struct {
	// Now is the time collateral is issued for; nil means time.Now.
	Now func() time.Time

	mu     sync.Mutex
	col    *tdx.Collateral
	issued time.Time
}

// Collateral implements tdx.CollateralSource.
func (s *TDXCollateralSource) Collateral(_ context.Context, req tdx.CollateralRequest) (*tdx.Collateral, error) {
	c, err := simTDXChain()
	if err != nil {
		return nil, attest.WithReason(attest.ReasonCollateralUnavailable, "simulator", err)
	}
	if req.FMSPC != c.FMSPC {
		return nil, attest.Errorf(attest.ReasonCollateralUnavailable, "FMSPC %X is not the simulator's", req.FMSPC[:])
	}
	now := time.Now()
	if s.Now != nil {
		now = s.Now()
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.col != nil && !now.Before(s.issued) && now.Before(s.issued.Add(24*time.Hour)) {
		return s.col, nil
	}
	issued := now.Add(-time.Hour)
	docs, err := c.Collateral(TDXCollateralOptions{Issued: issued})
	if err != nil {
		return nil, attest.WithReason(attest.ReasonCollateralUnavailable, "simulator", err)
	}
	col, err := tdx.ParseCollateral(docs.Docs()...)
	if err != nil {
		return nil, attest.WithReason(attest.ReasonCollateralUnavailable, "simulator", err)
	}
	s.col, s.issued = col, issued
	return col, nil
}

// NewTDXVerifier returns a verifier of the simulator's quotes: o with the
// simulator's roots and, when o has none, its collateral.
func NewTDXVerifier(o tdx.Options) (*tdx.Verifier, error) {
	roots, err := TDXRoots()
	if err != nil {
		return nil, err
	}
	o.Roots = roots
	if o.Collateral == nil {
		o.Collateral = &TDXCollateralSource{Now: o.Now}
	}
	return tdx.New(o), nil
}

// TEE is what a TEE verifier does (verifier.TEE).
type TEE interface {
	VerifyEvidence(ctx context.Context, ev attest.Evidence) (attest.Verified, error)
}

// DevTDX is the TDX verifier of a --dev-simulator verifier: a quote whose
// PCK chain Intel's root does not sign goes to the simulator's verifier;
// when that does not take it either, Intel's verdict stands.
type DevTDX struct{ Intel, Sim TEE }

// VerifyEvidence implements verifier.TEE.
func (d DevTDX) VerifyEvidence(ctx context.Context, ev attest.Evidence) (attest.Verified, error) {
	v, err := d.Intel.VerifyEvidence(ctx, ev)
	if attest.ReasonOf(err) != attest.ReasonCertChainInvalid {
		return v, err
	}
	sv, serr := d.Sim.VerifyEvidence(ctx, ev)
	if attest.ReasonOf(serr) == attest.ReasonCertChainInvalid {
		return v, err
	}
	return sv, serr
}
