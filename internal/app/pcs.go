package app

import (
	"fmt"
	"log/slog"
	"path/filepath"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/pcs"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/tee/tdx"
	"github.com/trustgate/trustgate/internal/tiered"
	"github.com/trustgate/trustgate/internal/verifier"
)

// newTDXVerifier is the TDX verifier of cfg: Intel's root, collateral from
// the PCS service (closed by the closers it appends to); with dev_simulator
// also the TDX simulator's root and its own collateral (sim.DevTDX).
func newTDXVerifier(cfg config.Config, rdb redis.UniversalClient, now func() time.Time, log *slog.Logger, closers *[]func()) (verifier.TEE, error) {
	pcsSvc, err := newPCSService(cfg, rdb, now, log)
	if err != nil {
		return nil, err
	}
	*closers = append(*closers, func() { pcsSvc.Close() })
	var v verifier.TEE = tdx.New(tdx.Options{Now: now, Collateral: pcsSvc})
	if !cfg.DevSimulator {
		return v, nil
	}
	simTDX, err := sim.NewTDXVerifier(tdx.Options{Now: now})
	if err != nil {
		return nil, err
	}
	log.Warn("dev_simulator: trusting the TDX simulator's Intel-like root and its collateral; every token is marked as such")
	return sim.DevTDX{Intel: v, Sim: simTDX}, nil
}

// newPCSService builds Intel's TDX collateral service of cfg: memory, disk
// (cert_cache_dir's pcs subdirectory) and Redis tiers in front of PCS
// (pcs_url, pcs_root_crl_url), offline when cfg is, waiting for fetches as
// long as for AMD's (cert_fetch_wait), serving a document past its refresh
// point as long as a VCEK (cert_max_staleness; never past its nextUpdate).
func newPCSService(cfg config.Config, rdb redis.UniversalClient, now func() time.Time, log *slog.Logger) (*pcs.Service, error) {
	c := pcs.Config{
		Settings: tiered.Settings{
			Offline:      cfg.Offline,
			Clock:        now,
			Logger:       log,
			FetchWait:    cfg.CertFetchWait,
			MaxStaleness: cfg.CertMaxStaleness,
		},
		URL: cfg.PCSURL, RootCRLURL: cfg.PCSRootCRLURL,
	}
	if cfg.CertCacheDir != "" {
		c.Dir = filepath.Join(cfg.CertCacheDir, "pcs")
	}
	if rdb != nil {
		c.Redis = rdb
	}
	// In Config zero means "none"; in pcs.Config it means the default.
	if c.MaxStaleness == 0 {
		c.MaxStaleness = -1
	}
	svc, err := pcs.New(c)
	if err != nil {
		return nil, fmt.Errorf("TDX collateral service: %w", err)
	}
	return svc, nil
}
