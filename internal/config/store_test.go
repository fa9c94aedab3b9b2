package config

import (
	"strings"
	"testing"
	"time"
)

// store_timeout: 1 s by default, set by file, TRUSTGATE_STORE_TIMEOUT or
// --store-timeout, refused outside 10ms..1m; it bounds every Redis dial,
// read, write and pool wait, and the client never retries a command,
// whatever the URL asks.
func TestStoreTimeout(t *testing.T) {
	t.Parallel()
	c, err := Load("", []string{"TRUSTGATE_STORE_TIMEOUT=250ms", "TRUSTGATE_REDIS=redis://127.0.0.1:6379/0?max_retries=5&read_timeout=30s"})
	if err != nil {
		t.Fatal(err)
	}
	if Default().StoreTimeout != time.Second || c.StoreTimeout != 250*time.Millisecond {
		t.Fatalf("default %v, from env %v; want 1s and 250ms", Default().StoreTimeout, c.StoreTimeout)
	}
	o, err := c.RedisOptions()
	if err != nil {
		t.Fatal(err)
	}
	d := 250 * time.Millisecond
	if o.MaxRetries != -1 || !o.ContextTimeoutEnabled || o.DialTimeout != d || o.ReadTimeout != d || o.WriteTimeout != d || o.PoolTimeout != d {
		t.Fatalf("redis options: retries %d, context timeouts %v, dial %v, read %v, write %v, pool %v",
			o.MaxRetries, o.ContextTimeoutEnabled, o.DialTimeout, o.ReadTimeout, o.WriteTimeout, o.PoolTimeout)
	}
	if err := c.SetFlag("store-timeout", "2s"); err != nil || c.StoreTimeout != 2*time.Second {
		t.Fatalf("flag: %v %v", err, c.StoreTimeout)
	}
	for _, bad := range []time.Duration{0, time.Millisecond, 2 * time.Minute} {
		c := Default()
		c.StoreTimeout = bad
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "store_timeout") {
			t.Errorf("store_timeout %v: %v", bad, err)
		}
	}
}
