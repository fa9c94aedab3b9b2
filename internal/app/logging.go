package app

import (
	"context"
	"fmt"
	"io"
	"log/slog"

	"github.com/redis/go-redis/v9"

	"github.com/trustgate/trustgate/internal/admin"
)

// NewLogHandler is serve's JSON log handler writing to w: it drops lines
// below least (log_level), except the admin audit lines (admin.AuditMessage,
// at info), which no level filters out: each one is a link of the audit
// chain, and one left out would read as a gap in `trustgate audit verify`.
func NewLogHandler(w io.Writer, least slog.Level) slog.Handler {
	inner := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: min(least, slog.LevelInfo)})
	return auditKeeping{inner, least}
}

// auditKeeping passes records at or above min, and audit lines.
type auditKeeping struct {
	slog.Handler
	min slog.Level
}

func (h auditKeeping) Handle(ctx context.Context, r slog.Record) error {
	if r.Level < h.min && r.Message != admin.AuditMessage {
		return nil
	}
	return h.Handler.Handle(ctx, r)
}

func (h auditKeeping) WithAttrs(as []slog.Attr) slog.Handler {
	return auditKeeping{h.Handler.WithAttrs(as), h.min}
}

func (h auditKeeping) WithGroup(name string) slog.Handler {
	return auditKeeping{h.Handler.WithGroup(name), h.min}
}

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
