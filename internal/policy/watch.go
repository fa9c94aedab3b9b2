package policy

import (
	"bytes"
	"context"
	"crypto/sha256"
	"log/slog"
	"os"
	"time"

	"github.com/trustgate/trustgate/internal/refvalues"
)

// Watch polls the policy file and the reference-values file every interval
// and reloads e when either's content changes ("" means that input is not
// a file: the default policy, or no reference values). A file that cannot
// be read, parsed or compiled is logged (never its content) and the old
// policy stays; e.LastError then reports it until a good version loads.
// Watch returns when ctx is done.
func Watch(ctx context.Context, e *Engine, policyPath, refPath string, interval time.Duration, log *slog.Logger) {
	if log == nil {
		log = slog.Default()
	}
	// The zero digest makes the first tick reload, so a change made
	// between the Engine's construction and this call is not missed.
	var last [sha256.Size]byte
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sum, err := digestFiles(policyPath, refPath)
		if err == nil && sum == last {
			continue
		}
		if err == nil {
			err = reloadFiles(ctx, e, policyPath, refPath)
		}
		if err != nil {
			e.fail(err)
			log.Error("policy reload failed; keeping the previous policy", "error", err.Error())
			last = sum // retry only when the files change again
			continue
		}
		last = sum
		log.Info("policy reloaded", "appraisal_policy_id", e.ID())
	}
}

func (e *Engine) fail(err error) { e.lastErr.Store(&err) }

func digestFiles(paths ...string) ([sha256.Size]byte, error) {
	var all bytes.Buffer
	for _, p := range paths {
		if p == "" {
			all.WriteString("\x00none\x00")
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return [sha256.Size]byte{}, err
		}
		h := sha256.Sum256(b)
		all.Write(h[:])
	}
	return sha256.Sum256(all.Bytes()), nil
}

func reloadFiles(ctx context.Context, e *Engine, policyPath, refPath string) error {
	var module string
	if policyPath != "" {
		b, err := os.ReadFile(policyPath)
		if err != nil {
			return err
		}
		module = string(b)
	}
	var ref *refvalues.Set
	if refPath != "" {
		s, err := refvalues.Load(refPath)
		if err != nil {
			return err
		}
		ref = s
	}
	return e.Reload(ctx, module, policyPath, ref)
}
