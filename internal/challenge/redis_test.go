package challenge

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/testkit"
)

// Against a real redis-server: one success per id, however many replicas
// race for it, and the record expires with its time.
func TestRedisStore(t *testing.T) {
	t.Parallel()
	rdb := testkit.StartRedis(t)
	a, b := NewRedisStore(rdb, ""), NewRedisStore(rdb, "") // two replicas
	ctx := context.Background()
	until := time.Now().Add(time.Minute)

	var wins atomic.Int32
	var wg sync.WaitGroup
	for i := range 50 {
		s := a
		if i%2 == 1 {
			s = b
		}
		wg.Go(func() {
			first, err := s.Consume(ctx, "nonce:x", until)
			if err != nil {
				t.Error(err)
			}
			if first {
				wins.Add(1)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d replicas consumed the same id", wins.Load())
	}
	if first, err := b.Consume(ctx, "nonce:y", until); !first || err != nil {
		t.Fatalf("another id: %v, %v", first, err)
	}
	ttl := rdb.TTL(ctx, DefaultRedisPrefix+"nonce:x").Val()
	if ttl <= 50*time.Second || ttl > time.Minute {
		t.Errorf("record TTL %s, want about a minute", ttl)
	}
	// A record already past its time is still kept a second.
	if first, _ := a.Consume(ctx, "nonce:late", time.Now().Add(-time.Hour)); !first {
		t.Fatal("late record refused")
	}
	if ttl := rdb.TTL(ctx, DefaultRedisPrefix+"nonce:late").Val(); ttl <= 0 || ttl > time.Second {
		t.Errorf("late record TTL %s, want a second", ttl)
	}

	rdb.Close()
	if _, err := a.Consume(ctx, "nonce:z", until); err == nil {
		t.Error("a closed Redis was not an error")
	}
}
