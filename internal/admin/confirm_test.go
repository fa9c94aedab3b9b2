package admin

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/policy"
	"github.com/trustgate/trustgate/internal/refvalues"
	"github.com/trustgate/trustgate/internal/testkit"
)

// mapMemory is a Memory in a map (a state directory that survives the
// replica's restart).
type mapMemory struct {
	mu sync.Mutex
	m  map[string][]byte
}

func (m *mapMemory) Read(name string, v any) (bool, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	b, ok := m.m[name]
	if !ok {
		return false, nil
	}
	return true, json.Unmarshal(b, v)
}

func (m *mapMemory) Write(name string, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m == nil {
		m.m = map[string][]byte{}
	}
	m.m[name] = b
	return nil
}

// A layer not confirmed on its Redis's current run: a replica without
// memory holds its approvals out (UnconfirmedError) until confirmed; a
// replica whose memory holds another layer under the same version
// (changes made on the store after it went back) does not confirm it; the
// operator's Confirm of a version that is no longer the store's confirms
// nothing, of the current one puts the approvals back in force.
func TestUnconfirmedLayer(t *testing.T) {
	t.Parallel()
	rs := testkit.StartRedisServer(t)
	ctx := context.Background()
	store := NewRedisStore(rs.Client, time.Second)
	newReplica := func(mem Memory) (*policy.Engine, *Layer, *syncBuffer) {
		e, err := policy.New(ctx, policy.Options{Reference: fileSet(), AwaitOverlay: true})
		if err != nil {
			t.Fatal(err)
		}
		logs := &syncBuffer{}
		o := LayerOptions{Store: store, Engine: e, Logger: slog.New(slog.NewJSONHandler(logs, nil))}
		if mem != nil {
			o.Memory = mem
		}
		l := newLayer(o)
		if err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
		return e, l, logs
	}
	put := func(label string, r refvalues.Record) {
		t.Helper()
		if _, err := store.Put(ctx, label, r, Change{TrustKey: "none"}); err != nil {
			t.Fatal(err)
		}
	}
	mem := &mapMemory{}
	_, r, _ := newReplica(mem)
	put("build-2", refvalues.Record{Entry: &refvalues.Measurement{Value: valB, Label: "build-2"}, By: "op"})
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	rs.Snapshot()
	put("build-2", refvalues.Record{By: "op"}) // withdrawn: version 2
	if err := r.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	rs.RestartFromSnapshot() // version 1, build-2 approved, a new run

	e, l, logs := newReplica(nil)
	var ue *UnconfirmedError
	if allows(t, e, valB) != "" || !errors.As(l.LastError(), &ue) || ue.Version != 1 || !l.Unconfirmed() {
		t.Fatalf("a replica without memory affirms an unconfirmed layer's approval: %q, %v", allows(t, e, valB), l.LastError())
	}
	if allows(t, e, valA) != "file-1" {
		t.Fatal("the signed file's values are held out too")
	}
	if !strings.Contains(logs.String(), `"kind":"unconfirmed"`) {
		t.Fatal("not logged")
	}

	// A change made on the store after it went back: version 2 again,
	// with build-2 approved. The replica that remembers version 2 (build-2
	// withdrawn) does not confirm it.
	put("file-1", refvalues.Record{By: "op"})
	e2, r2, logs2 := newReplica(mem)
	if _, ok, err := store.VersionConfirmed(ctx); err != nil || ok {
		t.Fatalf("another layer under the version held was confirmed: %v %v", ok, err)
	}
	if allows(t, e2, valB) != "" {
		t.Fatalf("the replica that remembers affirms the changed layer: %q\n%s", allows(t, e2, valB), logs2)
	}

	// The operator confirms: a version reviewed that is no longer the
	// store's confirms nothing; the current one does.
	if v, done, err := l.Confirm(ctx, 1); err != nil || done || v != 2 {
		t.Fatalf("confirm of version 1: %d %v %v", v, done, err)
	}
	if v, done, err := l.Confirm(ctx, 2); err != nil || !done || v != 2 {
		t.Fatalf("confirm: %d %v %v", v, done, err)
	}
	if allows(t, e, valB) != "build-2" || l.LastError() != nil || l.Unconfirmed() {
		t.Fatalf("confirmed, the approval is not in force: %v", l.LastError())
	}
	if err := r2.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if allows(t, e2, valB) != "build-2" || allows(t, e2, valA) != "" || r2.LastError() != nil {
		t.Fatalf("the other replica after the confirmation: %v", r2.LastError())
	}
}

// POST /admin/v1/reference-values/confirm: authenticated, its body empty
// or {"admin_version": N} (anything else 400), a version that is not the
// layer's 409 layer_changed; every call audited.
func TestConfirmEndpoint(t *testing.T) {
	f := newFixture(t, &MemoryStore{}, nil, Options{})
	auth := "Bearer " + token
	if a := f.do(t, "POST", PathConfirm, "", ""); a.code != http.StatusUnauthorized {
		t.Fatalf("unauthenticated: %d %s", a.code, a.body)
	}
	// Strictly decoded: the operator's version is never the last of two,
	// nor a key in another case, nor followed by more.
	bad := []string{`{"admin_version":-1}`, `{"version":0}`, `[`,
		`{"admin_version":0,"admin_version":7}`, `{"Admin_Version":0}`, `{"admin_version":0} {}`}
	for _, body := range bad {
		if a := f.do(t, "POST", PathConfirm, auth, body); a.code != http.StatusBadRequest || a.reason != ReasonMalformedRequest {
			t.Fatalf("%s: %d %s", body, a.code, a.body)
		}
	}
	if a := f.do(t, "POST", PathConfirm, auth, `{"admin_version":7}`); a.code != http.StatusConflict || a.reason != ReasonLayerChanged {
		t.Fatalf("another version: %d %s", a.code, a.body)
	}
	for _, body := range []string{"", `{"admin_version":0}`} {
		a := f.do(t, "POST", PathConfirm, auth, body)
		var c Confirmation
		if json.Unmarshal(a.body, &c); a.code != http.StatusOK || c.AdminVersion == nil || *c.AdminVersion != 0 {
			t.Fatalf("%q: %d %s", body, a.code, a.body)
		}
	}
	if n, want := strings.Count(f.logs.String(), `"action":"confirm"`), 4+len(bad); n != want {
		t.Fatalf("%d audit lines of confirm calls, want %d:\n%s", n, want, f.logs)
	}
}
