package admin

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"sync"
	"time"
)

// The audit trail (SPEC "The gatekeeper's configuration never goes
// back"): every admin call, accepted or refused, is one log line with
// "audit": "admin", who, action, label, outcome and reason. The lines of
// one replica form a chain: each carries audit_seq (1, 2, ...) and
// audit_prev, the hex SHA-256 of the previous audit line's canonical form
// (AuditDigest), so that a saved log shows a line taken out (a gap in
// audit_seq), put in or edited (audit_prev does not match). With Memory
// (the state directory), the chain goes on across restarts of the
// replica; without, a restarted replica starts a new chain at audit_seq 1
// with an empty audit_prev, which `trustgate audit verify` reports.

// The outcomes of an audit line.
const (
	OutcomeAccepted = "accepted" // the call did what it asked
	OutcomeRefused  = "refused"  // the call was refused (reason says why)
	OutcomeUnknown  = "unknown"  // the store did not confirm a write: it may or may not have been made
)

// AuditMessage is the msg of every audit line.
const AuditMessage = "admin audit"

// auditRecord is the Memory record of the chain's last line.
const auditRecord = "audit_chain"

// Auditor writes the chained audit lines of one replica. It is safe for
// concurrent use; lines are numbered in the order they are written.
type Auditor struct {
	log  *slog.Logger
	mem  Memory
	now  func() time.Time
	mu   sync.Mutex
	last auditState
}

type auditState struct {
	Seq  int64  `json:"seq"`
	Prev string `json:"prev"`
}

// NewAuditor returns an Auditor logging to log (nil: slog.Default()),
// going on from the chain kept in mem (nil: a new chain), stamping lines
// with now (nil: time.Now).
func NewAuditor(log *slog.Logger, mem Memory, now func() time.Time) *Auditor {
	if log == nil {
		log = slog.Default()
	}
	if now == nil {
		now = time.Now
	}
	a := &Auditor{log: log, mem: mem, now: now}
	if mem != nil {
		if _, err := mem.Read(auditRecord, &a.last); err != nil {
			log.Error("audit: the chain's last line is not readable in the state directory; starting a new chain", "error", err.Error())
			a.last = auditState{}
		}
	}
	return a
}

// AuditDigest is the hex SHA-256 of an audit line's canonical form: its
// JSON object without "time" (which the log handler adds), keys sorted,
// as encoding/json writes a map whose numbers are kept as written.
func AuditDigest(line map[string]any) string {
	c := make(map[string]any, len(line))
	for k, v := range line {
		if k != "time" {
			c[k] = v
		}
	}
	b, _ := json.Marshal(c)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:])
}

// Record writes one audit line. extra are more key-value pairs (strings
// or integers only, so that the line's canonical form survives a round
// trip through JSON).
func (a *Auditor) Record(who, action, label, outcome, reason string, extra ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	seq := a.last.Seq + 1
	fields := map[string]any{
		"level": "INFO", "msg": AuditMessage, "audit": "admin", "audit_seq": seq, "audit_prev": a.last.Prev,
		"at": a.now().UTC().Format(time.RFC3339Nano), "who": who, "action": action, "label": label, "outcome": outcome, "reason": reason,
	}
	attrs := []any{"audit", "admin", "audit_seq", seq, "audit_prev", a.last.Prev, "at", fields["at"],
		"who", who, "action", action, "label", label, "outcome", outcome, "reason", reason}
	for i := 0; i+1 < len(extra); i += 2 {
		k, _ := extra[i].(string)
		fields[k] = extra[i+1]
		attrs = append(attrs, k, extra[i+1])
	}
	// The digest is taken over the values as JSON gives them back.
	b, _ := json.Marshal(fields)
	var round map[string]any
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.UseNumber()
	dec.Decode(&round)
	a.log.Info(AuditMessage, attrs...)
	a.last = auditState{Seq: seq, Prev: AuditDigest(round)}
	if a.mem != nil {
		if err := a.mem.Write(auditRecord, a.last); err != nil {
			a.log.Error("audit: the chain's last line is not written to the state directory; a restart starts a new chain", "error", err.Error())
		}
	}
}
