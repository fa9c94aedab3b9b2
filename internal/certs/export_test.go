package certs

import (
	"context"

	"github.com/trustgate/trustgate/internal/tee/snp"
)

// HeldIn lists the tiers ("memory", "disk", "redis") that hold the VCEK
// of req.
func HeldIn(ctx context.Context, s *Service, req snp.KeyRequest) []string {
	k := makeVKey(req)
	var in []string
	if _, ok := s.mem.Get(k); ok {
		in = append(in, "memory")
	}
	for _, t := range s.tiers {
		if rec, err := t.get(ctx, k.name()); err == nil && rec != nil {
			in = append(in, t.kind())
		}
	}
	return in
}

// ParseRetryAfter exposes parseRetryAfter to tests.
var ParseRetryAfter = parseRetryAfter

// KeyName is the tier key of req's VCEK.
func KeyName(req snp.KeyRequest) string { return makeVKey(req).name() }
