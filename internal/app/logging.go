package app

import (
	"context"
	"fmt"
	"log/slog"

	"github.com/redis/go-redis/v9"
)

// RouteLibraryLogs sends what trustgate's libraries log through log, so
// that the process writes nothing but log's lines (JSON for serve):
//
//   - the standard library's log package (slog.SetDefault), which also
//     covers net/http's messages outside a server's ErrorLog;
//   - go-redis, whose messages (a failed dial, a pool problem) become
//     warnings "redis client" with the library's text as "detail".
//
// They are process globals, so the composition root (cmd) calls this once,
// before New. The other libraries on the serving path write nothing: OPA
// is given no logger and print() is refused at compile time; go-sev-guest
// logs (through github.com/google/logger, to stderr) only in functions
// trustgate does not call (abi.CertTable.Proto, trust.ProductCerts.Decode,
// its testing package's TcDevice).
func RouteLibraryLogs(log *slog.Logger) {
	slog.SetDefault(log)
	redis.SetLogger(redisLogger{log})
}

// redisLogger is go-redis's Logging interface over slog.
type redisLogger struct{ log *slog.Logger }

func (l redisLogger) Printf(ctx context.Context, format string, v ...any) {
	l.log.LogAttrs(ctx, slog.LevelWarn, "redis client", slog.String("detail", fmt.Sprintf(format, v...)))
}
