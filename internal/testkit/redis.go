package testkit

import (
	"context"
	"net"
	"os"
	"os/exec"
	"strconv"
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
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		if os.Getenv("TRUSTGATE_TEST_REQUIRE_REDIS") != "" {
			t.Fatal("redis-server is not on PATH and TRUSTGATE_TEST_REQUIRE_REDIS is set")
		}
		t.Skip("redis-server is not on PATH (scripts/test installs it)")
	}
	for try := 0; try < 5; try++ {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
		l.Close()
		cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
			"--dir", t.TempDir(), "--protected-mode", "yes")
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		exited := make(chan struct{})
		go func() { cmd.Wait(); close(exited) }()
		rdb := redis.NewClient(&redis.Options{Addr: net.JoinHostPort("127.0.0.1", port)})
		deadline := time.Now().Add(5 * time.Second)
		for time.Now().Before(deadline) {
			if rdb.Ping(context.Background()).Err() == nil {
				t.Cleanup(func() {
					rdb.Close()
					cmd.Process.Kill()
					<-exited
				})
				return rdb
			}
			select {
			case <-exited:
				deadline = time.Time{} // the port was taken: try another
			case <-time.After(20 * time.Millisecond):
			}
		}
		rdb.Close()
		cmd.Process.Kill()
		<-exited
	}
	t.Fatal("redis-server did not start")
	return nil
}
