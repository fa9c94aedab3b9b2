package app

import (
	"context"
	"testing"

	"github.com/trustgate/trustgate/internal/policy"
	"github.com/trustgate/trustgate/internal/policyids"
	"github.com/trustgate/trustgate/internal/verifier"
)

// The policy wrapped to record its ids passes on whether it reads
// input.launch (verifier.LaunchBlind): without it every attestation of a
// launch-blind policy would read the launch record first (one more store
// round trip).
func TestTrackedPolicyKeepsLaunchBlind(t *testing.T) {
	e, err := policy.New(context.Background(), policy.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var p verifier.Policy = trackedPolicy{Policy: e, ids: policyids.New(e.ID, nil, nil)}
	lb, ok := p.(verifier.LaunchBlind)
	if !ok || lb.IgnoresLaunch() != e.IgnoresLaunch() {
		t.Fatalf("LaunchBlind %v; IgnoresLaunch %v, want %v", ok, ok && lb.IgnoresLaunch(), e.IgnoresLaunch())
	}
	if p.ID() != e.ID() {
		t.Fatalf("ID %q, want %q", p.ID(), e.ID())
	}
}
