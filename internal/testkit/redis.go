package testkit

import (
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// StartRedis starts a private redis-server on a free loopback port, in the
// test's temporary directory and without persistence, and kills it at
// cleanup. Without redis-server on PATH the test fails when
// TRUSTGATE_TEST_REQUIRE_REDIS is set (scripts/test, and so CI, sets it
// after installing redis-server) and is skipped otherwise.
func StartRedis(t testing.TB) *redis.Client {
	t.Helper()
	return StartRedisServer(t).Client
}

// Redis is a private redis-server that a test can kill, restart and stall.
// Its methods fail the test when the server does not do what they ask.
type Redis struct {
	// Client is the test's own client of the server (go-redis defaults).
	Client *redis.Client
	// Addr is the server's host:port; it stays the same across restarts.
	Addr string

	t      testing.TB
	bin    string
	dir    string
	port   string
	args   []string // more arguments of redis-server
	mu     sync.Mutex
	cmd    *exec.Cmd
	exited chan struct{}
}

// StartRedisServer is StartRedis returning the server, for tests of what a
// verifier does when Redis restarts or stalls.
func StartRedisServer(t testing.TB) *Redis {
	t.Helper()
	return startRedisServer(t)
}

// startRedisServer is StartRedisServer with more arguments of
// redis-server.
func startRedisServer(t testing.TB, args ...string) *Redis {
	t.Helper()
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("TRUSTGATE_TEST_REQUIRE_REDIS") != "" {
			t.Fatal("redis-server is not on PATH and TRUSTGATE_TEST_REQUIRE_REDIS is set")
		}
		t.Skip("redis-server is not on PATH (scripts/test installs it)")
	}
	r := &Redis{t: t, bin: bin, dir: t.TempDir(), args: args}
	for try := 0; try < 5; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		r.port = strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		if r.start() {
			r.Addr = net.JoinHostPort("127.0.0.1", r.port)
			r.Client = redis.NewClient(&redis.Options{Addr: r.Addr})
			t.Cleanup(func() {
				r.Client.Close()
				r.kill()
			})
			return r
		}
	}
	t.Fatal("redis-server did not start")
	return nil
}

// start runs redis-server on r.port and reports whether it answers.
func (r *Redis) start() bool {
	cmd := exec.Command(r.bin, append([]string{"--port", r.port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", r.dir, "--protected-mode", "yes"}, r.args...)...)
	if err := cmd.Start(); err != nil {
		r.t.Fatal(err)
	}
	exited := make(chan struct{})
	go func() { cmd.Wait(); close(exited) }()
	c := redis.NewClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", r.port), MaxRetries: -1})
	defer c.Close()
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); {
		if c.Ping(context.Background()).Err() == nil {
			r.mu.Lock()
			r.cmd, r.exited = cmd, exited
			r.mu.Unlock()
			return true
		}
		select {
		case <-exited:
			return false // the port was taken
		case <-time.After(20 * time.Millisecond):
		}
	}
	cmd.Process.Kill()
	<-exited
	return false
}

// kill kills the server (stopped or not) and waits for its end.
func (r *Redis) kill() {
	r.mu.Lock()
	cmd, exited := r.cmd, r.exited
	r.cmd = nil
	r.mu.Unlock()
	if cmd == nil {
		return
	}
	cmd.Process.Kill()
	<-exited
}

// Kill kills the server with SIGKILL: nothing is saved.
func (r *Redis) Kill() {
	r.t.Helper()
	r.kill()
}

// Restart kills the server and starts it again on the same address,
// empty: Redis restarted without its data.
func (r *Redis) Restart() {
	r.t.Helper()
	r.kill()
	os.Remove(filepath.Join(r.dir, "dump.rdb"))
	if !r.start() {
		r.t.Fatal("redis-server did not restart on its port")
	}
}

// Snapshot saves a snapshot now (SAVE), for a later Restart(true) to load:
// what is written between the two is what an RDB restart loses.
func (r *Redis) Snapshot() {
	r.t.Helper()
	if err := r.Client.Save(context.Background()).Err(); err != nil {
		r.t.Fatalf("redis SAVE: %v", err)
	}
}

// RestartFromSnapshot kills the server and starts it again from the last
// Snapshot, losing what was written since, as an RDB-persisted Redis does.
func (r *Redis) RestartFromSnapshot() {
	r.t.Helper()
	r.kill()
	if !r.start() {
		r.t.Fatal("redis-server did not restart on its port")
	}
}

// Stop stalls the server (SIGSTOP): connections are accepted by the kernel
// but nothing is answered until Cont.
func (r *Redis) Stop() { r.t.Helper(); r.signal(syscall.SIGSTOP) }

// Cont resumes a stopped server (SIGCONT).
func (r *Redis) Cont() { r.t.Helper(); r.signal(syscall.SIGCONT) }

func (r *Redis) signal(s syscall.Signal) {
	r.t.Helper()
	r.mu.Lock()
	cmd := r.cmd
	r.mu.Unlock()
	if cmd == nil {
		r.t.Fatal("redis-server is not running")
	}
	if err := cmd.Process.Signal(s); err != nil {
		r.t.Fatalf("signal %v to redis-server: %v", s, err)
	}
}
