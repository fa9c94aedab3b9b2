package app

import (
	"log/slog"
	"time"

	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/tee/nitro"
	"github.com/trustgate/trustgate/internal/verifier"
)

// newNitroVerifier is the Nitro verifier: AWS's pinned root; with
// --dev-simulator also the Nitro simulator's.
func newNitroVerifier(cfg config.Config, now func() time.Time, log *slog.Logger) (verifier.TEE, error) {
	var v verifier.TEE = nitro.New(nitro.Options{Now: now})
	if !cfg.DevSimulator {
		return v, nil
	}
	simV, err := sim.NewNitroVerifier(nitro.Options{Now: now})
	if err != nil {
		return nil, err
	}
	log.Warn("dev_simulator: trusting the Nitro simulator's AWS-like root; every token is marked as such")
	return sim.DevNitro{Intel: v, Sim: simV}, nil
}
