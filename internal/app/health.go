package app

import (
	"context"
	"errors"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustgate/trustgate/internal/admin"
	"github.com/trustgate/trustgate/internal/httpapi"
	"github.com/trustgate/trustgate/internal/policy"
	"github.com/trustgate/trustgate/internal/policyids"
	"github.com/trustgate/trustgate/internal/verifier"
)

// trackedPolicy is the policy whose id, each time it is read, is recorded
// as in force (policyids.Set.ID).
type trackedPolicy struct {
	verifier.Policy
	ids *policyids.Set
}

func (p trackedPolicy) ID() string { return p.ids.ID() }

// IgnoresLaunch passes on the policy's verifier.LaunchBlind answer (a
// policy that is not one is taken to read input.launch), so that the
// wrapper keeps a blind policy's attestation to one store step.
func (p trackedPolicy) IgnoresLaunch() bool {
	lb, ok := p.Policy.(verifier.LaunchBlind)
	return ok && lb.IgnoresLaunch()
}

// readyRedisTimeout caps /readyz's Redis check, so that a probe with a
// 1 s timeout (Kubernetes' default) gets the answer, not a timeout.
const readyRedisTimeout = 900 * time.Millisecond

type health struct {
	e        *policy.Engine
	id       func() string         // the appraisal-policy-id in force
	layer    *admin.Layer          // nil without one
	rdb      redis.UniversalClient // nil without Redis
	timeout  time.Duration         // bounds the Redis check: store_timeout, at most readyRedisTimeout
	stopping *atomic.Bool          // set once shutdown began
}

var errShuttingDown = errors.New("shutting down")

func (h health) PolicyID() string { return h.id() }

// Ready fails once shutdown began, while Redis (when configured) does not
// answer, or while the admin layer has not been read yet: attestations
// would then be refused. A refused update of the policy, the reference
// values or the admin layer does not fail it: the last good set is in
// force, and Ready returns *httpapi.Degraded (200, status "degraded",
// the reason), so that one broken ConfigMap does not take every replica
// out of service at once; trustgate_config_reload_failures_total counts
// it for alerts.
func (h health) Ready() error {
	if h.stopping.Load() {
		return errShuttingDown
	}
	if h.rdb != nil {
		ctx, cancel := context.WithTimeout(context.Background(), h.timeout)
		defer cancel()
		if err := h.rdb.Ping(ctx).Err(); err != nil {
			return errors.New("redis does not answer; single-use records cannot be kept")
		}
	}
	if h.e.Awaiting() {
		return errors.New("the admin reference values have not been read from redis yet")
	}
	if err := errors.Join(h.e.LastError(), h.layerError()); err != nil {
		return &httpapi.Degraded{Err: err}
	}
	return nil
}

func (h health) layerError() error {
	if h.layer == nil {
		return nil
	}
	return h.layer.LastError()
}
