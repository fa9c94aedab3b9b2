package config

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strconv"
	"strings"

	"github.com/redis/go-redis/v9"
)

// URL schemes of a Redis with high availability.
const (
	// SchemeSentinel: redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER[/DB],
	// the sentinels' addresses and the name of the primary they watch.
	SchemeSentinel = "redis+sentinel://"
	// SchemeCluster: redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...],
	// some of the cluster's nodes.
	SchemeCluster = "redis+cluster://"
)

// RedisClient returns a client of the redis URL, nil without one:
//
//   - redis://, rediss://, unix://: one Redis server (RedisOptions);
//   - redis+sentinel://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]/MASTER[/DB]:
//     the primary named MASTER, found through the sentinels at HOST:PORT
//     and followed across failovers (go-redis's failover client). USER and
//     PASSWORD authenticate to the Redis servers, not to the sentinels;
//   - redis+cluster://[[USER]:PASSWORD@]HOST:PORT[,HOST:PORT...]: a Redis
//     Cluster, HOST:PORT being some of its nodes.
//
// USER and PASSWORD are percent-encoded. The sentinel and cluster URLs
// take no query: whatever the scheme, a command is never retried and every
// dial, read, write and wait for a pooled connection is bounded by
// StoreTimeout, as RedisOptions says.
//
// onConnect, if given, is the client's OnConnect hook: it runs on every
// new connection before any command of the caller's (to a sentinel too).
func (c Config) RedisClient(onConnect ...func(context.Context, *redis.Conn) error) (redis.UniversalClient, error) {
	f, cl, o, err := c.redisSetup()
	var hook func(context.Context, *redis.Conn) error
	if len(onConnect) > 0 {
		hook = onConnect[0]
	}
	switch {
	case err != nil:
		return nil, err
	case f != nil:
		f.OnConnect = hook
		return redis.NewFailoverClient(f), nil
	case cl != nil:
		cl.OnConnect = hook
		return redis.NewClusterClient(cl), nil
	case o != nil:
		o.OnConnect = hook
		return redis.NewClient(o), nil
	}
	return nil, nil
}

// redisSetup parses the redis URL into the options of one of the three
// clients (all nil without a URL).
func (c Config) redisSetup() (*redis.FailoverOptions, *redis.ClusterOptions, *redis.Options, error) {
	var scheme string
	switch {
	case strings.HasPrefix(c.Redis, SchemeSentinel):
		scheme = SchemeSentinel
	case strings.HasPrefix(c.Redis, SchemeCluster):
		scheme = SchemeCluster
	default:
		o, err := c.RedisOptions()
		return nil, nil, o, err
	}
	user, pass, addrs, path, err := splitHAURL(strings.TrimPrefix(c.Redis, scheme))
	if err != nil {
		// Not the URL itself: it may hold a password.
		return nil, nil, nil, fmt.Errorf("redis: %s URL: %w", strings.TrimSuffix(scheme, "://"), err)
	}
	t := c.StoreTimeout
	if scheme == SchemeCluster {
		if path != "" {
			return nil, nil, nil, errors.New("redis: redis+cluster URL: no path (a cluster has one database)")
		}
		return nil, &redis.ClusterOptions{Addrs: addrs, Username: user, Password: pass,
			MaxRetries: -1, ContextTimeoutEnabled: true,
			DialTimeout: t, ReadTimeout: t, WriteTimeout: t, PoolTimeout: t}, nil, nil
	}
	master, db, _ := strings.Cut(path, "/")
	if master == "" {
		return nil, nil, nil, errors.New("redis: redis+sentinel URL: want /MASTER[/DB] after the sentinels")
	}
	n := 0
	if db != "" {
		if n, err = strconv.Atoi(db); err != nil || n < 0 {
			return nil, nil, nil, errors.New("redis: redis+sentinel URL: DB is not a database number")
		}
	}
	return &redis.FailoverOptions{MasterName: master, SentinelAddrs: addrs, Username: user, Password: pass, DB: n,
		MaxRetries: -1, ContextTimeoutEnabled: true,
		DialTimeout: t, ReadTimeout: t, WriteTimeout: t, PoolTimeout: t}, nil, nil, nil
}

// splitHAURL splits what follows the scheme: [[USER]:PASSWORD@]HOSTS[/PATH].
func splitHAURL(rest string) (user, pass string, addrs []string, path string, err error) {
	if strings.ContainsAny(rest, "?#") {
		return "", "", nil, "", errors.New("no query or fragment")
	}
	if i := strings.LastIndex(rest, "@"); i >= 0 {
		u, p, ok := strings.Cut(rest[:i], ":")
		if !ok {
			return "", "", nil, "", errors.New("want :PASSWORD@ or USER:PASSWORD@")
		}
		if user, err = url.PathUnescape(u); err == nil {
			pass, err = url.PathUnescape(p)
		}
		if err != nil {
			return "", "", nil, "", errors.New("user or password: bad percent-encoding")
		}
		rest = rest[i+1:]
	}
	hosts, path, _ := strings.Cut(rest, "/")
	path = strings.TrimSuffix(path, "/")
	for i, a := range strings.Split(hosts, ",") {
		h, p, err := net.SplitHostPort(a)
		if n, perr := strconv.Atoi(p); err != nil || h == "" || perr != nil || n < 1 || n > 65535 {
			// Not the address itself: a mistyped URL may hold the
			// password there.
			return "", "", nil, "", fmt.Errorf("address %d is not HOST:PORT (port 1 to 65535)", i+1)
		}
		addrs = append(addrs, a)
	}
	return user, pass, addrs, path, nil
}
