package app

import (
	"fmt"
	"log/slog"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/launch"
)

// loadLaunchKey reads (or creates, or generates) launch_key_file, saying
// what an operator must know about the key it got.
func loadLaunchKey(cfg config.Config, log *slog.Logger) ([]byte, error) {
	key, src, err := launch.LoadOrCreateKey(cfg.LaunchKeyFile)
	if err != nil {
		return nil, fmt.Errorf("launch_key_file: %w", err)
	}
	switch src {
	case launch.KeyEphemeral:
		msg := "no launch_key_file: generated a launch pseudonym key; launch sequences start again with a restart and `trustgate fleet lookup` cannot follow a guest"
		if cfg.Redis != "" {
			msg += "; replicas sharing redis MUST share one launch_key_file, or each numbers launches on its own"
		}
		log.Warn(msg)
	case launch.KeyCreated:
		log.Warn("launch_key_file did not exist: generated a launch pseudonym key and wrote it there (mode 0600); give the same file to every replica and to `trustgate fleet lookup`", "launch_key_file", cfg.LaunchKeyFile)
	}
	return key, nil
}

// newLaunches builds the launch tracker: records in Redis when there is
// one (shared by the replicas, each call bounded by store_timeout), in
// memory otherwise.
func newLaunches(cfg config.Config, key []byte, rdb redis.UniversalClient, obs launch.Observer, now func() time.Time) (*launch.Tracker, error) {
	var st launch.Store = launch.NewMemoryStore(0, now)
	if rdb != nil {
		st = launch.NewRedisStore(rdb, launch.RedisOptions{Timeout: cfg.StoreTimeout})
	}
	return launch.New(launch.Options{Key: key, Store: st, Retention: cfg.LaunchRetention, Observer: obs, Now: now})
}
