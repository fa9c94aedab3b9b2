package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustgate/trustgate/internal/config"
)

// redisStats are a Redis server's counters that bench compares before and
// after the load: commands processed (a script's own commands included)
// and CPU time (user and system, main thread and children).
type redisStats struct {
	commands int64
	cpu      time.Duration
}

// benchRedis reads the verifier's Redis (bench --redis): its INFO counters
// and, with MONITOR, the commands clients sent it.
type benchRedis struct {
	url string
	c   redis.UniversalClient
	// monitor, if not nil, counts what MONITOR shows during the load.
	monitor *redisMonitor
}

func newBenchRedis(url string, monitor bool) (*benchRedis, error) {
	cfg := config.Default()
	cfg.Redis, cfg.StoreTimeout = url, 5*time.Second
	c, err := cfg.RedisClient()
	if err != nil {
		return nil, err
	}
	b := &benchRedis{url: url, c: c}
	if monitor {
		b.monitor = &redisMonitor{}
	}
	return b, nil
}

// stats reads INFO stats and cpu.
func (b *benchRedis) stats(ctx context.Context) (redisStats, error) {
	info, err := b.c.Info(ctx, "stats", "cpu").Result()
	if err != nil {
		return redisStats{}, fmt.Errorf("redis INFO: %w", err)
	}
	field := func(name string) (float64, error) {
		_, rest, ok := strings.Cut(info, "\n"+name+":")
		if !ok {
			return 0, fmt.Errorf("redis INFO has no %s", name)
		}
		v, _, _ := strings.Cut(rest, "\n")
		return strconv.ParseFloat(strings.TrimSpace(v), 64)
	}
	var s redisStats
	n, err := field("total_commands_processed")
	if err != nil {
		return s, err
	}
	s.commands = int64(n)
	for _, f := range []string{"used_cpu_sys", "used_cpu_user", "used_cpu_sys_children", "used_cpu_user_children"} {
		v, err := field(f)
		if err != nil {
			return s, err
		}
		s.cpu += time.Duration(v * float64(time.Second))
	}
	return s, nil
}

// redisMonitor counts the commands MONITOR shows: sent by a client, or run
// by a script ("[db lua]").
type redisMonitor struct {
	conn           net.Conn
	done           chan struct{}
	mu             sync.Mutex
	client, script int64
	err            error
}

// start opens its own connection to url's server (redis:// or rediss://
// without TLS only) and sends MONITOR.
func (m *redisMonitor) start(ctx context.Context, url string) error {
	o, err := redis.ParseURL(url)
	if err != nil {
		return fmt.Errorf("--redis-monitor needs a redis:// URL: %w", err)
	}
	if o.TLSConfig != nil {
		return errors.New("--redis-monitor: a rediss:// URL is not supported")
	}
	var d net.Dialer
	conn, err := d.DialContext(ctx, o.Network, o.Addr)
	if err != nil {
		return err
	}
	rd := bufio.NewReaderSize(conn, 1<<16)
	cmd := "MONITOR\r\n"
	if o.Password != "" {
		user := o.Username
		if user == "" {
			user = "default"
		}
		cmd = resp("AUTH", user, o.Password) + cmd
	}
	if _, err := io.WriteString(conn, cmd); err != nil {
		conn.Close()
		return err
	}
	replies := 1 // MONITOR's +OK, and AUTH's before it
	if o.Password != "" {
		replies++
	}
	for range replies {
		line, err := rd.ReadString('\n')
		if err != nil || !strings.HasPrefix(line, "+OK") {
			conn.Close()
			return fmt.Errorf("MONITOR: %q %v", strings.TrimSpace(line), err)
		}
	}
	m.conn, m.done = conn, make(chan struct{})
	go func() {
		defer close(m.done)
		for {
			line, err := rd.ReadString('\n')
			if err != nil {
				m.mu.Lock()
				if !errors.Is(err, net.ErrClosed) {
					m.err = err
				}
				m.mu.Unlock()
				return
			}
			_, rest, ok := strings.Cut(line, " [")
			if !ok {
				continue
			}
			src, _, _ := strings.Cut(rest, "]")
			m.mu.Lock()
			if strings.HasSuffix(src, " lua") {
				m.script++
			} else {
				m.client++
			}
			m.mu.Unlock()
		}
	}()
	return nil
}

// stop closes the connection and returns the counts.
func (m *redisMonitor) stop() (client, script int64, err error) {
	m.conn.Close()
	<-m.done
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.client, m.script, m.err
}

func resp(args ...string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "*%d\r\n", len(args))
	for _, a := range args {
		fmt.Fprintf(&b, "$%d\r\n%s\r\n", len(a), a)
	}
	return b.String()
}
