package config

import (
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// SPEC "Redis high availability": --redis takes
// redis+sentinel://[:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER[/DB] and
// redis+cluster://HOST:PORT[,HOST:PORT...]; both keep the no-retry and
// store_timeout options; a malformed one is refused by Validate without
// quoting its password.
func TestRedisHAURLs(t *testing.T) {
	t.Parallel()
	d := 300 * time.Millisecond
	for _, c := range []struct {
		url      string
		master   string
		addrs    []string
		user, pw string
		db       int
		cluster  bool
	}{
		{url: "redis+sentinel://10.0.0.1:26379/mymaster", master: "mymaster", addrs: []string{"10.0.0.1:26379"}},
		{url: "redis+sentinel://:s%40cret@a:1,b:2,c:3/m/2", master: "m", addrs: []string{"a:1", "b:2", "c:3"}, pw: "s@cret", db: 2},
		{url: "redis+sentinel://tg:pw@[::1]:26379/m/", master: "m", addrs: []string{"[::1]:26379"}, user: "tg", pw: "pw"},
		{url: "redis+cluster://a:7000,b:7001", addrs: []string{"a:7000", "b:7001"}, cluster: true},
		{url: "redis+cluster://:pw@a:7000/", addrs: []string{"a:7000"}, pw: "pw", cluster: true},
	} {
		cfg := Default()
		cfg.Redis, cfg.StoreTimeout = c.url, d
		if err := cfg.Validate(); err != nil {
			t.Errorf("%s: %v", c.url, err)
			continue
		}
		f, cl, o, err := cfg.redisSetup()
		if err != nil || o != nil || (f == nil) != c.cluster || (cl == nil) != !c.cluster {
			t.Errorf("%s: failover %v, cluster %v, simple %v, %v", c.url, f != nil, cl != nil, o != nil, err)
			continue
		}
		var got struct {
			addrs                 []string
			user, pw              string
			retries               int
			ctxTimeout            bool
			dial, read, write, pl time.Duration
		}
		if f != nil {
			if f.MasterName != c.master || f.DB != c.db {
				t.Errorf("%s: master %q db %d", c.url, f.MasterName, f.DB)
			}
			got.addrs, got.user, got.pw, got.retries, got.ctxTimeout = f.SentinelAddrs, f.Username, f.Password, f.MaxRetries, f.ContextTimeoutEnabled
			got.dial, got.read, got.write, got.pl = f.DialTimeout, f.ReadTimeout, f.WriteTimeout, f.PoolTimeout
		} else {
			got.addrs, got.user, got.pw, got.retries, got.ctxTimeout = cl.Addrs, cl.Username, cl.Password, cl.MaxRetries, cl.ContextTimeoutEnabled
			got.dial, got.read, got.write, got.pl = cl.DialTimeout, cl.ReadTimeout, cl.WriteTimeout, cl.PoolTimeout
		}
		if strings.Join(got.addrs, " ") != strings.Join(c.addrs, " ") || got.user != c.user || got.pw != c.pw {
			t.Errorf("%s: addrs %v user %q password %q", c.url, got.addrs, got.user, got.pw)
		}
		if got.retries != -1 || !got.ctxTimeout || got.dial != d || got.read != d || got.write != d || got.pl != d {
			t.Errorf("%s: retries %d, context timeouts %v, timeouts %v %v %v %v", c.url, got.retries, got.ctxTimeout, got.dial, got.read, got.write, got.pl)
		}
		rc, err := cfg.RedisClient()
		if err != nil {
			t.Fatal(err)
		}
		switch rc.(type) {
		case *redis.ClusterClient:
			if !c.cluster {
				t.Errorf("%s: a cluster client", c.url)
			}
		case *redis.Client:
			if c.cluster {
				t.Errorf("%s: not a cluster client", c.url)
			}
		default:
			t.Errorf("%s: a %T", c.url, rc)
		}
		rc.Close()
	}
	for _, bad := range []string{
		"redis+sentinel://a:1",                    // no master
		"redis+sentinel://a:1,b/m",                // no port
		"redis+sentinel://a:1/m/x",                // DB not a number
		"redis+sentinel://a:1/m?db=2",             // query
		"redis+sentinel://hunter2@a:1/m",          // no colon before the password
		"redis+cluster://a:1/0",                   // a path
		"redis+cluster://:hunter2@a:0",            // port 0
		"redis+cluster://:hunter2@a:70000,b:7001", // port out of range
		"redis+cluster://:%zzhunter2@a:1",         // bad escape
		"redis+sentinel://",                       // nothing
	} {
		cfg := Default()
		cfg.Redis = bad
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), "redis") {
			t.Errorf("%s: %v, want a redis error", bad, err)
		} else if strings.Contains(err.Error(), "hunter2") {
			t.Errorf("%s: the error quotes the password: %v", bad, err)
		}
	}
	if c := Default(); func() bool { r, err := c.RedisClient(); return r != nil || err != nil }() {
		t.Error("no URL: want no client")
	}
}
