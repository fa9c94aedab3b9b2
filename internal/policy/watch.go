package policy

import (
	"context"
	"crypto/sha256"
	"errors"
	"io/fs"
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
	w := &watcher{e: e, policyPath: policyPath, refPath: refPath, log: log, onError: onError}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		w.poll(ctx)
	}
}

// watcher is the state Watch keeps between polls.
type watcher struct {
	e                   *Engine
	policyPath, refPath string
	log                 *slog.Logger
	onError             []func(error)
	last, pending       [sha256.Size]byte // digests of the files: loaded (or failed), seen once
}

// poll is one of Watch's polls.
func (w *watcher) poll(ctx context.Context) {
	e := w.e
	sum, readErr := digestFiles(w.policyPath, w.refPath)
	if e.trust != nil && w.refPath != "" && readErr == nil {
		// The signature counts as part of the file: a new signature for
		// the same content is a change, and both must have stayed put for
		// an interval.
		sig, _ := os.ReadFile(w.refPath + refvalues.SigSuffix)
		sum = sha256.Sum256(append(append(sum[:], 0), sig...))
	}
	if readErr != nil {
		sum = sha256.Sum256([]byte("unreadable\x00" + readErr.Error()))
	}
	if sum == w.last {
		return
	}
	if sum != w.pending {
		w.pending = sum // wait until it stays put for one interval
		return
	}
	w.last = sum
	before := e.ID()
	err := readErr
	if err == nil {
		err = reloadFiles(ctx, e, w.policyPath, w.refPath)
	} else {
		e.fail(readError(w.policyPath, w.refPath, err))
	}
	if err != nil {
		err = e.LastError() // a *FileError: no file content
		attrs := []any{"error", err.Error()}
		var fe *FileError
		if errors.As(err, &fe) {
			attrs = append(attrs, "file", fe.File, "path", fe.Path, "kind", fe.Kind, "line", fe.Line, "column", fe.Column)
		}
		w.log.Error("policy reload failed; keeping the previous policy", attrs...)
		for _, f := range w.onError {
			if f != nil {
				f(err)
			}
		}
		return
	}
	if id := e.ID(); id != before {
		w.log.Info("policy reloaded", "appraisal_policy_id", id, "policy_reason_codes", e.ReasonCodes())
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

// readError is the *FileError of err, an error reading policyPath or
// refPath.
func readError(policyPath, refPath string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) && pe.Path == refPath && refPath != "" {
		return unreadable(ReferenceFile, refPath, err)
	}
	return PolicyError(policyPath, err)
}

// reloadFiles reads both files and reloads e. Errors are *FileErrors:
// they say which file failed, how and where, and never quote it.
func reloadFiles(ctx context.Context, e *Engine, policyPath, refPath string) error {
	var module string
	if policyPath != "" {
		b, err := os.ReadFile(policyPath)
		if err != nil {
			err = PolicyError(policyPath, err)
			e.fail(err)
			return err
		}
		module = string(b)
	}
	var ref *refvalues.Set
	if refPath != "" {
		s, err := LoadSignedReference(refPath, e.trust)
		if err == nil && e.admit != nil {
			err = RollbackError(refPath, e.admit(ctx, s))
		}
		if err != nil {
			e.fail(err)
			return err
		}
		ref = s
	}
	return e.Reload(ctx, module, ref)
}
