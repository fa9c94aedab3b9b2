package testkit

import "github.com/trustgate/trustgate/internal/sim"

// The test-only Intel-like TDX PKI lives in internal/sim (the TDX
// simulator signs with it); these names keep the tests' spelling. Each
// NewTDXChain is a fresh PKI of random keys, unlike the simulator's.
type (
	TDXChain             = sim.TDXChain
	TDXChainOptions      = sim.TDXChainOptions
	TDXQuoteFields       = sim.TDXQuoteFields
	TDXCollateralOptions = sim.TDXCollateralOptions
	TDXCollateral        = sim.TDXCollateral
)

// NewTDXChain makes a fresh fake Intel PKI (sim.NewTDXChain).
func NewTDXChain(o TDXChainOptions) (*TDXChain, error) { return sim.NewTDXChain(o) }

var (
	// DefaultTDXFMSPC is the FMSPC of a default fake PCK.
	DefaultTDXFMSPC = sim.DefaultTDXFMSPC
	// DefaultTEETCBSVN is TEE_TCB_SVN of a default fake quote.
	DefaultTEETCBSVN = sim.DefaultTEETCBSVN
	// TDQEMRSigner is the MRSIGNER of the fake QE.
	TDQEMRSigner = sim.TDQEMRSigner
)
