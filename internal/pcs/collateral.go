package pcs

import (
	"context"
	"errors"
	"sync"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/tee/tdx"
	"github.com/trustgate/trustgate/internal/tiered"
)

// Collateral implements tdx.CollateralSource: the TCB info of req.FMSPC,
// the TD QE identity, the CRL of req.CA and the root's CRL, each verified,
// from the tiers or PCS. It waits for fetches at most FetchWait. Errors are
// collateral_unavailable.
func (s *Service) Collateral(ctx context.Context, req tdx.CollateralRequest) (*tdx.Collateral, error) {
	if req.CA != "platform" && req.CA != "processor" {
		return nil, attest.WithReason(attest.ReasonCollateralUnavailable, "collateral", errUnknownPCKCA)
	}
	keys := [4]docKey{{kind: kindTCB, fmspc: req.FMSPC}, {kind: kindQE}, {kind: kindPCKCRL, ca: req.CA}, {kind: kindRootCRL}}
	var es [4]*entry
	now := s.now()
	warm := true
	for i, k := range keys {
		if e, ok := s.mem.Get(k); ok && e.State(now) == tiered.Fresh {
			es[i] = e
		} else {
			warm = false
		}
	}
	if !warm { // the four lookups at once, each waiting until the same time
		until := s.waitUntil(ctx)
		var errs [4]error
		var wg sync.WaitGroup
		for i, k := range keys {
			wg.Go(func() { es[i], errs[i] = s.get(ctx, k, until) })
		}
		wg.Wait()
		if err := errors.Join(errs[:]...); err != nil {
			return nil, attest.WithReason(attest.ReasonCollateralUnavailable, "collateral", err)
		}
	}
	ak := asmKey{fmspc: req.FMSPC, ca: req.CA}
	if a, ok := s.assembled.Get(ak); ok && a.parts == es {
		return a.col, nil
	}
	col := tdx.MergeCollateral(es[0].col, es[1].col, es[2].col, es[3].col)
	s.assembled.Put(ak, &assembly{parts: es, col: col})
	return col, nil
}

// asmKey and assembly: the collateral of one FMSPC and PCK CA, made once
// from its four entries (so that what the verifier checks of it, such as
// CRL signatures, is checked once) and made again when an entry changes.
type asmKey struct {
	fmspc [6]byte
	ca    string
}

type assembly struct {
	parts [4]*entry
	col   *tdx.Collateral
}
