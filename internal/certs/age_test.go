package certs_test

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/certs"
	"github.com/trustgate/trustgate/internal/testkit"
	"github.com/trustgate/trustgate/internal/tiered"
)

// ages is an Observer that also records served ages (certs.AgeObserver).
type ages struct {
	*counts
	mu   sync.Mutex
	seen []time.Duration
}

func (a *ages) CacheAge(d time.Duration) {
	a.mu.Lock()
	defer a.mu.Unlock()
	a.seen = append(a.seen, d)
}

// Each key served is reported with its age: time since the KDS gave it,
// whether it was just fetched or served from the cache days later.
func TestServedAge(t *testing.T) {
	t.Parallel()
	clock := testkit.NewClock(time.Now())
	kds := realKDS(t, clock.Now)
	obs := &ages{counts: newCounts()}
	svc := newService(t, certs.Config{Settings: tiered.Settings{HTTPClient: kds.Client(), NoDisk: true, Clock: clock.Now, Sleep: fakeSleep(clock)}, KDSURL: kds.URL, Observer: obs})
	if _, err := svc.EndorsementKey(context.Background(), trusteeReq); err != nil {
		t.Fatal(err)
	}
	clock.Add(5 * 24 * time.Hour)
	if _, err := svc.EndorsementKey(context.Background(), trusteeReq); err != nil {
		t.Fatal(err)
	}
	obs.mu.Lock()
	defer obs.mu.Unlock()
	if len(obs.seen) != 2 || obs.seen[0] != 0 || obs.seen[1] != 5*24*time.Hour {
		t.Fatalf("served ages %v, want [0 120h]", obs.seen)
	}
}
