package policy

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/trustgate/trustgate/internal/refvalues"
)

// Watch polls the policy file and the reference-values file every interval
// and reloads e when the content of either changes ("" means that input is
// not a file: the default policy, or no reference values). A file that
// cannot be read, parsed, validated or compiled is logged (never its
// content), passed to onError if one is given, and the old policy stays;
// e.LastError reports it until a good version loads. A broken version is
// not retried until the files change again. Watch blocks until ctx is done.
//
// A change is applied once the files' content has stayed the same for one
// interval, so a file caught half-written (which could drop a min_tcb
// floor) is not loaded. The first reload comes after two polls whatever
// the content, so a change made between the Engine's construction and the
// call to Watch is not missed. A nil log means slog.Default(); interval
// must be positive.
func Watch(ctx context.Context, e *Engine, policyPath, refPath string, interval time.Duration, log *slog.Logger, onError ...func(error)) {
	if log == nil {
		log = slog.Default()
	}
	var last, pending [sha256.Size]byte
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		sum, readErr := digestFiles(policyPath, refPath)
		if readErr != nil {
			sum = sha256.Sum256([]byte("unreadable\x00" + readErr.Error()))
		}
		if sum == last {
			continue
		}
		if sum != pending {
			pending = sum // wait until it stays put for one interval
			continue
		}
		last = sum
		before := e.ID()
		err := readErr
		if err == nil {
			err = reloadFiles(ctx, e, policyPath, refPath)
		} else {
			e.fail(err)
		}
		if err != nil {
			err = e.LastError() // the summary: no file content
			log.Error("policy reload failed; keeping the previous policy", "error", err.Error())
			for _, f := range onError {
				if f != nil {
					f(err)
				}
			}
			continue
		}
		if id := e.ID(); id != before {
			log.Info("policy reloaded", "appraisal_policy_id", id)
		}
	}
}

// digestFiles is the SHA-256 of the files' SHA-256s ("" counts as a fixed
// marker). An unreadable file is an error.
func digestFiles(paths ...string) ([sha256.Size]byte, error) {
	h := sha256.New()
	for _, p := range paths {
		if p == "" {
			h.Write([]byte("\x00none\x00"))
			continue
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return [sha256.Size]byte{}, err
		}
		sum := sha256.Sum256(b)
		h.Write(sum[:])
	}
	var out [sha256.Size]byte
	h.Sum(out[:0])
	return out, nil
}

// reloadFiles reads both files and reloads e. Validation problems of the
// reference values are counted, not quoted: they repeat the file's values.
func reloadFiles(ctx context.Context, e *Engine, policyPath, refPath string) error {
	var module string
	if policyPath != "" {
		b, err := os.ReadFile(policyPath)
		if err != nil {
			e.fail(err)
			return err
		}
		module = string(b)
	}
	var ref *refvalues.Set
	if refPath != "" {
		s, err := refvalues.Load(refPath)
		if err != nil {
			var ve *refvalues.ValidationError
			if errors.As(err, &ve) {
				err = fmt.Errorf("reference values %s: %d validation problem(s); `trustgate policy eval --data FILE` lists them", refPath, len(ve.Problems))
			}
			e.fail(err)
			return err
		}
		ref = s
	}
	return e.Reload(ctx, module, ref)
}
