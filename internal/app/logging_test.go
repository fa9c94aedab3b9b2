package app

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/admin"
)

// log_level filters serve's lines, never the admin audit lines: one left
// out would be a gap in the audit chain.
func TestLogLevelKeepsAuditLines(t *testing.T) {
	t.Parallel()
	var buf bytes.Buffer
	log := slog.New(NewLogHandler(&buf, slog.LevelWarn)).With("replica", "a")
	log.Info("an info line")
	log.Debug("a debug line")
	log.Warn("a warning")
	admin.NewAuditor(log, nil, nil).Record("token:alice", "approve", "b3", "accepted", "")
	out := buf.String()
	if strings.Contains(out, "an info line") || strings.Contains(out, "a debug line") {
		t.Errorf("lines below warn were written:\n%s", out)
	}
	if !strings.Contains(out, "a warning") {
		t.Errorf("the warning is missing:\n%s", out)
	}
	if !strings.Contains(out, `"msg":"`+admin.AuditMessage+`"`) || !strings.Contains(out, `"audit_seq":1`) {
		t.Errorf("the audit line was filtered out at log_level warn:\n%s", out)
	}
}
