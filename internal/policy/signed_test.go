package policy

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"errors"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/refvalues"
)

func fileKind(err error) string {
	var fe *FileError
	if errors.As(err, &fe) {
		return fe.Kind
	}
	return ""
}

// With a trusted key, a reference-values file comes into force only with a
// valid detached signature over its very bytes; an unsigned, badly signed
// or wrongly keyed update is refused, reported and counted, and the last
// good set stays in force.
func TestWatchSignedReference(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	dir := t.TempDir()
	refPath := filepath.Join(dir, "ref.yaml")
	sign := func(k *ecdsa.PrivateKey, body string) {
		sig, err := refvalues.SignFile(k, []byte(body))
		if err != nil {
			t.Fatal(err)
		}
		writeFile(t, refPath+refvalues.SigSuffix, sig)
	}
	first := "measurements:\n  - value: \"" + approved + "\"\n    label: b1\n"
	writeFile(t, refPath, first)

	// At start: unsigned is refused, signed is loaded.
	if _, err := LoadSignedReference(refPath, &key.PublicKey); fileKind(err) != "signature_missing" {
		t.Fatalf("unsigned at start: %v", err)
	}
	sign(key, first)
	ref, err := LoadSignedReference(refPath, &key.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(context.Background(), Options{Reference: ref, TrustKey: &key.PublicKey})
	if err != nil {
		t.Fatal(err)
	}
	var failures atomic.Int32
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Watch(ctx, e, "", refPath, 5*time.Millisecond, nil, func(error) { failures.Add(1) })
	label := func() string {
		d, err := e.Evaluate(ctx, claims(nil))
		if err != nil || !d.Allow {
			return ""
		}
		return d.Label
	}
	if label() != "b1" {
		t.Fatal("signed set not in force")
	}

	steps := []struct {
		name  string
		write func()
		kind  string // "" = loads
		label string
	}{
		{"unsigned change", func() { writeFile(t, refPath, "measurements:\n  - value: \""+approved+"\"\n    label: evil\n") }, "signature_invalid", "b1"},
		{"signed by another key", func() { sign(other, "measurements:\n  - value: \""+approved+"\"\n    label: evil\n") }, "signature_invalid", "b1"},
		{"signature removed", func() {
			writeFile(t, refPath+refvalues.SigSuffix, "")
		}, "signature_malformed", "b1"},
		{"signed by the trusted key", func() { sign(key, "measurements:\n  - value: \""+approved+"\"\n    label: evil\n") }, "", "evil"},
	}
	for _, s := range steps {
		before := failures.Load()
		s.write()
		if s.kind == "" {
			waitFor(t, s.name, func() bool { return label() == s.label && e.LastError() == nil })
			continue
		}
		waitFor(t, s.name+" reported and counted", func() bool { return failures.Load() > before && fileKind(e.LastError()) == s.kind })
		if got := label(); got != s.label {
			t.Fatalf("%s: label %q in force, want the old %q", s.name, got, s.label)
		}
	}
}

// The admin layer stays over the file across reloads, changes the
// appraisal-policy-id, and an engine told to await it appraises nothing
// (store_unavailable) until it is set.
func TestOverlay(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e, err := New(ctx, Options{Reference: set(nil), AwaitOverlay: true})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Evaluate(ctx, claims(nil)); attest.ReasonOf(err) != attest.ReasonStoreUnavailable || !e.Awaiting() {
		t.Fatalf("before the layer: %v", err)
	}
	id0 := e.ID()
	if err := e.SetOverlay(ctx, &refvalues.Overlay{Version: 1, Records: map[string]refvalues.Record{"build-1": {By: "x"}}}); err != nil {
		t.Fatal(err)
	}
	d, err := e.Evaluate(ctx, claims(nil))
	if err != nil || d.Allow || e.ID() == id0 {
		t.Fatalf("withdrawn build-1: %+v %v (id changed: %v)", d, err, e.ID() != id0)
	}
	// A reload of the file keeps the layer over it.
	if err := e.Reload(ctx, "", set(func(s *refvalues.Set) {
		s.Measurements = append(s.Measurements, refvalues.Measurement{Value: next, Label: "build-2"})
	})); err != nil {
		t.Fatal(err)
	}
	if d, _ := e.Evaluate(ctx, claims(nil)); d.Allow {
		t.Fatal("a reload dropped the withdrawal")
	}
	if d, _ := e.Evaluate(ctx, claims(func(c *attest.Claims) { c.Measurement = mustHex(next) })); !d.Allow || d.Label != "build-2" {
		t.Fatalf("build-2 from the new file: %+v", d)
	}
	file, ov, eff, _ := e.Reference()
	if len(file.Measurements) != 2 || ov.Version != 1 || len(eff.Measurements) != 1 || eff.Measurements[0].Label != "build-2" {
		t.Fatalf("Reference: file %v, layer %v, effective %v", file, ov, eff)
	}
}
