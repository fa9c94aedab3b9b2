package app

import (
	"context"
	"time"
)

// storeProbeInterval is how often the shared store is probed, whether or
// not requests arrive: trustgate_store_up is never older than it and a
// round trip (SPEC: at least every 2 s).
const storeProbeInterval = time.Second

// probeStore probes the shared store once and sets trustgate_store_up,
// logging a change.
func (a *App) probeStore(ctx context.Context) {
	err := a.shared.Probe(ctx)
	if err == nil {
		// the fleet's record of the policy in force, for releases
		// (policyids.Grace covers the probes' interval)
		err = a.ids.Refresh(ctx)
	}
	up := err == nil
	a.metrics.StoreUp(up)
	if was := a.storeUp.Swap(up); was != up || !a.storeProbed.Swap(true) {
		if up {
			a.log.Info("store: redis answers", "store_up", 1)
		} else {
			a.log.Warn("store: redis does not answer; attestations and releases are refused with store_unavailable until it does", "store_up", 0, "error", err.Error())
		}
	}
}

// followStore probes the shared store every storeProbeInterval until ctx
// ends.
func (a *App) followStore(ctx context.Context) {
	t := time.NewTicker(storeProbeInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			a.probeStore(ctx)
		}
	}
}
