package certs_test

import (
	"context"
	"slices"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustgate/trustgate/internal/certs"
	"github.com/trustgate/trustgate/internal/testkit"
	"github.com/trustgate/trustgate/internal/tiered"
)

// Two replicas share the Redis tier: what one fetched the other serves
// without asking the KDS.
func TestRedisTierSharedByReplicas(t *testing.T) {
	t.Parallel()
	rdb := testkit.StartRedis(t)
	kds := realKDS(t, nil)
	cfg := certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), NoDisk: true, Redis: rdb, RedisPrefix: "replicas:"}, KDSURL: kds.URL}
	a, b := newService(t, cfg), newService(t, cfg)
	if _, err := a.EndorsementKey(context.Background(), trusteeReq); err != nil {
		t.Fatal(err)
	}
	obs := newCounts()
	cfg.Observer = obs
	b = newService(t, cfg)
	if _, err := b.EndorsementKey(context.Background(), trusteeReq); err != nil {
		t.Fatal(err)
	}
	if n := len(kds.Requests("vcek")); n != 1 {
		t.Fatalf("%d VCEK requests, want 1 for two replicas", n)
	}
	if in := certs.HeldIn(context.Background(), b, trusteeReq); !slices.Equal(in, []string{"memory", "redis"}) {
		t.Fatalf("second replica holds it in %v", in)
	}
	if obs.lookup(certs.LookupHit) != 1 {
		t.Fatalf("lookups %v, want one hit", obs.lookups)
	}
	// Redis keys expire with the certificate.
	ttl, err := rdb.TTL(context.Background(), "replicas:"+certs.KeyName(trusteeReq)).Result()
	if err != nil || ttl < 24*time.Hour {
		t.Fatalf("TTL %s (%v), want until the VCEK expires", ttl, err)
	}
}

// A Redis that goes away is logged and skipped: the KDS still serves.
func TestRedisDownFallsThrough(t *testing.T) {
	t.Parallel()
	kds := realKDS(t, nil)
	rdb := redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", MaxRetries: -1, DialTimeout: 100 * time.Millisecond})
	defer rdb.Close()
	svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), NoDisk: true, Redis: rdb}, KDSURL: kds.URL})
	if _, err := svc.EndorsementKey(context.Background(), trusteeReq); err != nil {
		t.Fatal(err)
	}
}
