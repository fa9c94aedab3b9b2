package testkit

import "github.com/trustgate/trustgate/internal/sim"

// The test-only AWS-like Nitro PKI lives in internal/sim (the Nitro
// simulator signs with it). Each NewNitroPKI is a fresh PKI of random keys,
// unlike the simulator's; its root is passed to a verifier through
// nitro.Options.Roots and never trusted in production.
type (
	NitroPKI        = sim.NitroPKI
	NitroPKIOptions = sim.NitroPKIOptions
	NitroDocument   = sim.NitroDocument
)

// NewNitroPKI makes a fresh fake Nitro PKI (sim.NewNitroPKI).
func NewNitroPKI(o NitroPKIOptions) (*NitroPKI, error) { return sim.NewNitroPKI(o) }
