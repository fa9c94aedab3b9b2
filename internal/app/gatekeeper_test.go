package app

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/admin"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/refvalues"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/testkit"
)

var b3 = func() [48]byte {
	var m [48]byte
	copy(m[:], strings.Repeat("\x42", 48))
	return m
}()

// SPEC "The gatekeeper's configuration never goes back", issue 18 item 1:
// approve b3, Redis snapshots (SAVE), withdraw b3, Redis comes back from
// the snapshot's RDB file. The running replicas write their newer layer
// back (logged, counted kind="rollback") and /readyz stays (or comes back
// to) "ok"; a replica started afterwards refuses b3. Then every replica
// stops and Redis comes back from the snapshot again: replicas restarted
// with their state directories write the newer layer back at start, and
// b3 is refused by them and by a replica started after them.
func TestStoreRestoredFromSnapshotNeverApprovesWithdrawn(t *testing.T) {
	t.Parallel()
	rs := testkit.StartRedisServer(t)
	shared := sharedKeys(t, rs.Addr)
	stateA, stateB := filepath.Join(t.TempDir(), "a"), filepath.Join(t.TempDir(), "b")
	withState := func(dir string, more ...func(*config.Config)) func(*config.Config) {
		return func(c *config.Config) {
			shared(c)
			c.StateDir = dir
			for _, f := range more {
				f(c)
			}
		}
	}
	a, stopA := startStoppable(t, withState(stateA, withAdmin(t)), nil)
	b, stopB := startStoppable(t, withState(stateB), nil)
	adminURL := serveAdmin(t, a)
	ctx := context.Background()
	g3 := newGuest(t, sim.Options{Measurement: &b3})
	attestAt := func(s *server) string {
		_, err := s.c.Attest(ctx, g3.request(s.challenge(t), false))
		return reasonOf(err)
	}
	entry := fmt.Sprintf(`{"value":%q,"label":"b3"}`, hex.EncodeToString(b3[:]))
	if code, body := adminDo(t, "POST", adminURL+admin.PathMeasurements, entry); code != http.StatusCreated {
		t.Fatalf("approve: %d %s", code, body)
	}
	waitFor(t, func() bool { return attestAt(b) == "" })
	rs.Snapshot()
	if code, body := adminDo(t, "DELETE", adminURL+admin.PathMeasurements+"/b3", ""); code != http.StatusNoContent {
		t.Fatalf("withdraw: %d %s", code, body)
	}
	waitFor(t, func() bool { return attestAt(b) == "measurement_mismatch" })

	storeHasWithdrawal := func() bool {
		o, err := admin.NewRedisStore(rs.Client, time.Second).Load(ctx)
		return err == nil && o.Version == 2 && o.Records["b3"].Withdrawn()
	}
	rs.RestartFromSnapshot()
	// Phase 1: running replicas heal the store.
	waitFor(t, storeHasWithdrawal)
	for _, s := range []*server{a, b} {
		if r := attestAt(s); r != "measurement_mismatch" {
			t.Fatalf("running replica after the restore: %q", r)
		}
		waitFor(t, func() bool {
			var h v1.Health
			getJSON(t, s.url+v1.PathReadyz, http.StatusOK, &h)
			return h.Status == "ok"
		})
	}
	_, ma := rawGet(t, a.url+v1.PathMetrics)
	_, mb := rawGet(t, b.url+v1.PathMetrics)
	if !strings.Contains(ma+mb, `trustgate_config_reload_failures_total{file="admin_layer",kind="rollback"} 1`) {
		t.Fatalf("the heal is not counted:\n%s\n%s", grepLines(ma, "admin_layer"), grepLines(mb, "admin_layer"))
	}
	if !strings.Contains(a.logText()+b.logText(), "the store went back from version 2 to 1") {
		t.Fatal("the heal is not logged")
	}
	c := startServerAt(t, shared, nil)
	if r := attestAt(c); r != "measurement_mismatch" {
		t.Fatalf("replica started after the restore: %q", r)
	}

	// Phase 2: every replica stops; Redis comes back from the snapshot
	// once more; the replicas restart with their state directories.
	stopA()
	stopB()
	rs.RestartFromSnapshot()
	if o, _ := admin.NewRedisStore(rs.Client, time.Second).Load(ctx); o == nil || o.Version != 1 || o.Records["b3"].Withdrawn() {
		t.Fatalf("the snapshot does not hold the approval: %+v", o)
	}
	a2, _ := startStoppable(t, withState(stateA, withAdmin(t)), nil)
	if !storeHasWithdrawal() {
		t.Fatal("a replica restarted with its state directory did not write its newer layer back at start")
	}
	b2, _ := startStoppable(t, withState(stateB), nil)
	d := startServerAt(t, shared, nil)
	for name, s := range map[string]*server{"a restarted": a2, "b restarted": b2, "started after": d} {
		if r := attestAt(s); r != "measurement_mismatch" {
			t.Fatalf("%s: the withdrawn build: %q", name, r)
		}
	}
}

var b5 = func() [48]byte {
	var m [48]byte
	copy(m[:], strings.Repeat("\x55", 48))
	return m
}()

// settled is the first answer that is not store_unavailable: after a
// Redis restart, nonces issued before it (and for a second after its
// detection) are refused so.
func settled(t *testing.T, attest func() string) string {
	t.Helper()
	var r string
	waitFor(t, func() bool { r = attest(); return r != "store_unavailable" })
	return r
}

// SPEC "a replica starting against a store that went back must never
// approve what the fleet withdrew": approve b5 and b3, Redis snapshots,
// withdraw b3; every replica stops, their state directories are lost, and
// Redis comes back from the snapshot. A replica started with an EMPTY
// state directory cannot tell the snapshot's layer from the fleet's: it
// fails closed, every approval of the admin layer held out (b3 and b5
// refused measurement_mismatch), /readyz "degraded" naming "unconfirmed",
// logged and counted (kind="unconfirmed"), GET shows "unconfirmed". The
// operator withdraws b3 again (allowed though it is held out) and
// confirms (POST .../confirm, audited): b5 is in force again, b3 stays
// refused, /readyz "ok", and a replica started afterwards approves b5.
func TestEmptyStateReplicaAfterRestoreFailsClosed(t *testing.T) {
	t.Parallel()
	rs := testkit.StartRedisServer(t)
	shared := sharedKeys(t, rs.Addr)
	a, stopA := startStoppable(t, both(shared, withAdmin(t), func(c *config.Config) { c.StateDir = filepath.Join(t.TempDir(), "a") }), nil)
	adminURL := serveAdmin(t, a)
	ctx := context.Background()
	g3, g5 := newGuest(t, sim.Options{Measurement: &b3}), newGuest(t, sim.Options{Measurement: &b5})
	attestAt := func(s *server, g *guest) string {
		_, err := s.c.Attest(ctx, g.request(s.challenge(t), false))
		return reasonOf(err)
	}
	for label, m := range map[string][48]byte{"b5": b5, "b3": b3} {
		entry := fmt.Sprintf(`{"value":%q,"label":%q}`, hex.EncodeToString(m[:]), label)
		if code, body := adminDo(t, "POST", adminURL+admin.PathMeasurements, entry); code != http.StatusCreated {
			t.Fatalf("approve %s: %d %s", label, code, body)
		}
	}
	rs.Snapshot()
	if code, body := adminDo(t, "DELETE", adminURL+admin.PathMeasurements+"/b3", ""); code != http.StatusNoContent {
		t.Fatalf("withdraw: %d %s", code, body)
	}
	stopA()
	rs.RestartFromSnapshot()
	if o, _ := admin.NewRedisStore(rs.Client, time.Second).Load(ctx); o == nil || o.Version != 2 || o.Records["b3"].Withdrawn() {
		t.Fatalf("the snapshot does not hold the approval: %+v", o)
	}

	// A replica with an empty state directory: fail closed.
	e := startServerAt(t, both(shared, withAdmin(t), func(c *config.Config) { c.StateDir = filepath.Join(t.TempDir(), "empty") }), nil)
	eURL := serveAdmin(t, e)
	if r := settled(t, func() string { return attestAt(e, g3) }); r != "measurement_mismatch" {
		t.Fatalf("unconfirmed layer, b3 (withdrawn by the fleet): %q", r)
	}
	if r := settled(t, func() string { return attestAt(e, g5) }); r != "measurement_mismatch" {
		t.Fatalf("unconfirmed layer, b5 (approved in the restored layer): %q", r)
	}
	var h v1.Health
	getJSON(t, e.url+v1.PathReadyz, http.StatusOK, &h)
	if h.Status != "degraded" || !strings.Contains(h.Error, "unconfirmed") {
		t.Fatalf("/readyz of the replica holding approvals out: %+v", h)
	}
	if _, m := rawGet(t, e.url+v1.PathMetrics); !strings.Contains(m, `trustgate_config_reload_failures_total{file="admin_layer",kind="unconfirmed"} 1`) {
		t.Fatalf("not counted:\n%s", grepLines(m, "admin_layer"))
	}
	if !strings.Contains(e.logText(), `"kind":"unconfirmed"`) {
		t.Fatal("not logged")
	}
	code, body := adminDo(t, "GET", eURL+admin.PathReferenceValues, "")
	if code != http.StatusOK || !strings.Contains(body, `"unconfirmed":true`) {
		t.Fatalf("GET: %d %s", code, body)
	}

	// The operator withdraws b3 again, then confirms.
	if code, body := adminDo(t, "DELETE", eURL+admin.PathMeasurements+"/b3", ""); code != http.StatusNoContent {
		t.Fatalf("withdraw of a held-out approval: %d %s", code, body)
	}
	if r := attestAt(e, g5); r != "measurement_mismatch" {
		t.Fatalf("a change does not confirm the layer: b5 %q", r)
	}
	if code, body := adminDo(t, "POST", eURL+admin.PathConfirm, `{"admin_version":2}`); code != http.StatusConflict || !strings.Contains(body, admin.ReasonLayerChanged) {
		t.Fatalf("confirm of a version that is not the store's: %d %s", code, body)
	}
	if code, body := adminDo(t, "POST", eURL+admin.PathConfirm, `{"admin_version":3}`); code != http.StatusOK {
		t.Fatalf("confirm: %d %s", code, body)
	}
	waitFor(t, func() bool { return strings.Contains(e.logText(), `"action":"confirm"`) }) // written once answered
	if r := settled(t, func() string { return attestAt(e, g5) }); r != "" {
		t.Fatalf("confirmed layer, b5: %q", r)
	}
	if r := attestAt(e, g3); r != "measurement_mismatch" {
		t.Fatalf("confirmed layer, b3: %q", r)
	}
	getJSON(t, e.url+v1.PathReadyz, http.StatusOK, &h)
	if h.Status != "ok" {
		t.Fatalf("/readyz once confirmed: %+v", h)
	}
	f := startServerAt(t, both(shared, func(c *config.Config) { c.StateDir = filepath.Join(t.TempDir(), "f") }), nil)
	if r := settled(t, func() string { return attestAt(f, g5) }); r != "" {
		t.Fatalf("replica started after the confirmation, b5: %q", r)
	}
}

// A plain restart of Redis (data kept) while a replica runs: the running
// replica, which holds the layer, confirms it on the new run by itself;
// a replica started afterwards with an empty state directory approves
// normally and /readyz says "ok". A first start on an empty Redis is not
// held out either. Then every replica stops and Redis restarts: a replica
// restarted with its state directory confirms the layer at start.
func TestRedisRestartReconfirmedByRunningReplica(t *testing.T) {
	t.Parallel()
	rs := testkit.StartRedisServer(t)
	shared := sharedKeys(t, rs.Addr)
	a, stopA := startStoppable(t, both(shared, withAdmin(t)), nil)
	adminURL := serveAdmin(t, a)
	stateB := filepath.Join(t.TempDir(), "b")
	withStateB := both(shared, func(c *config.Config) { c.StateDir = stateB })
	b, stopB := startStoppable(t, withStateB, nil)
	ctx := context.Background()
	g3 := newGuest(t, sim.Options{Measurement: &b3})
	attestAt := func(s *server) string {
		_, err := s.c.Attest(ctx, g3.request(s.challenge(t), false))
		return reasonOf(err)
	}
	entry := fmt.Sprintf(`{"value":%q,"label":"b3"}`, hex.EncodeToString(b3[:]))
	if code, body := adminDo(t, "POST", adminURL+admin.PathMeasurements, entry); code != http.StatusCreated {
		t.Fatalf("approve: %d %s", code, body)
	}
	waitFor(t, func() bool { return attestAt(b) == "" })
	if r := attestAt(a); r != "" {
		t.Fatalf("first start on an empty Redis: %q", r)
	}
	store := admin.NewRedisStore(rs.Client, time.Second)
	if _, ok, err := store.VersionConfirmed(ctx); err != nil || !ok {
		t.Fatalf("a layer made on this run is not confirmed: %v %v", ok, err)
	}
	rs.Snapshot()
	rs.RestartFromSnapshot() // all data kept; a new run_id
	waitFor(t, func() bool { _, ok, err := store.VersionConfirmed(ctx); return err == nil && ok })
	if !strings.Contains(a.logText()+b.logText(), "admin layer confirmed on the store's current run") {
		t.Fatal("the confirmation is not logged")
	}
	d, stopD := startStoppable(t, both(shared, func(c *config.Config) { c.StateDir = filepath.Join(t.TempDir(), "d") }), nil)
	if r := settled(t, func() string { return attestAt(d) }); r != "" {
		t.Fatalf("empty-state replica after a plain Redis restart: %q", r)
	}
	for _, s := range []*server{a, b, d} {
		var h v1.Health
		getJSON(t, s.url+v1.PathReadyz, http.StatusOK, &h)
		if h.Status != "ok" {
			t.Fatalf("/readyz: %+v", h)
		}
	}

	// Every replica stops; Redis restarts; b restarts with its state
	// directory and confirms the layer at start, before serving.
	stopA()
	stopB()
	stopD()
	rs.Snapshot()
	rs.RestartFromSnapshot()
	if _, ok, err := store.VersionConfirmed(ctx); err != nil || ok {
		t.Fatalf("a layer after a restart with no replica running is confirmed: %v %v", ok, err)
	}
	b2 := startServerAt(t, withStateB, nil)
	if _, ok, err := store.VersionConfirmed(ctx); err != nil || !ok {
		t.Fatalf("a replica restarted with its state directory did not confirm the layer it holds at start: %v %v\n%s", ok, err, b2.logText())
	}
	if r := settled(t, func() string { return attestAt(b2) }); r != "" {
		t.Fatalf("b restarted: %q", r)
	}
}

// Issue 18 item 2: re-POSTing the very same approval JWS after its
// withdrawal, or one signed before the withdrawal and never used, is 409
// approval_replayed (at another replica too); approving again needs a new
// signature.
func TestOldApprovalReplayedRefused(t *testing.T) {
	t.Parallel()
	rs := testkit.StartRedisServer(t)
	key, trust := writeTrustKeys(t)
	shared := sharedKeys(t, rs.Addr)
	signed := func(c *config.Config) {
		shared(c)
		c.RefvaluesTrustKey = trust
		signStamped(t, key, c.ReferenceValues)
	}
	a := startServerAt(t, both(signed, withAdmin(t)), nil)
	b := startServerAt(t, both(signed, withAdmin(t)), nil)
	adminA, adminB := serveAdmin(t, a), serveAdmin(t, b)
	ctx := context.Background()
	g3 := newGuest(t, sim.Options{Measurement: &b3})
	m := refvalues.Measurement{Value: hex.EncodeToString(b3[:]), Label: "b3"}
	older, _ := refvalues.SignEntry(key, m, time.Now().Add(-time.Minute)) // signed, never used
	first, _ := refvalues.SignEntry(key, m, time.Now().Add(-2*time.Second))
	if code, body := adminDo(t, "POST", adminA+admin.PathMeasurements, first); code != http.StatusCreated {
		t.Fatalf("approve: %d %s", code, body)
	}
	if code, body := adminDo(t, "DELETE", adminA+admin.PathMeasurements+"/b3", ""); code != http.StatusNoContent {
		t.Fatalf("withdraw: %d %s", code, body)
	}
	for name, tc := range map[string]struct{ url, jws string }{
		"the same JWS again":         {adminA, first},
		"the same JWS elsewhere":     {adminB, first},
		"an older JWS, never used":   {adminA, older},
		"an older JWS, at the other": {adminB, older},
	} {
		code, body := adminDo(t, "POST", tc.url+admin.PathMeasurements, tc.jws)
		if code != http.StatusConflict || !strings.Contains(body, `"reason":"approval_replayed"`) {
			t.Fatalf("%s: %d %s", name, code, body)
		}
	}
	waitFor(t, func() bool {
		_, err := b.c.Attest(ctx, g3.request(b.challenge(t), false))
		return reasonOf(err) == "measurement_mismatch"
	})
	fresh, _ := refvalues.SignEntry(key, m, time.Now().Add(time.Second))
	if code, body := adminDo(t, "POST", adminB+admin.PathMeasurements, fresh); code != http.StatusCreated {
		t.Fatalf("a new signature: %d %s", code, body)
	}
	if _, err := b.c.Attest(ctx, g3.request(b.challenge(t), false)); err != nil {
		t.Fatalf("approved with a new signature: %v", err)
	}
	if logs := a.logText(); !strings.Contains(logs, `"outcome":"refused","reason":"approval_replayed"`) {
		t.Fatalf("the refusal is not audited:\n%s", logs)
	}
}

// Issue 18 item 4: the trust key requirement is the fleet's. A replica
// with refvalues_trust_key records it in the layer at start; from then on
// a replica without the key (running already, or started later) cannot
// write an unsigned approval (409 trust_key_mismatch), and one without
// it, or with another key, does not start on that Redis.
func TestTrustKeyIsAFleetProperty(t *testing.T) {
	t.Parallel()
	rs := testkit.StartRedisServer(t)
	key, trust := writeTrustKeys(t)
	_, otherTrust := writeTrustKeys(t)
	shared := sharedKeys(t, rs.Addr)
	unsigned := startServerAt(t, both(shared, withAdmin(t)), nil) // before any key
	adminU := serveAdmin(t, unsigned)
	a := startServerAt(t, both(shared, withAdmin(t), func(c *config.Config) {
		c.RefvaluesTrustKey = trust
		signStamped(t, key, c.ReferenceValues)
	}), nil)
	adminA := serveAdmin(t, a)
	entry := fmt.Sprintf(`{"value":%q,"label":"b3"}`, hex.EncodeToString(b3[:]))
	code, body := adminDo(t, "POST", adminU+admin.PathMeasurements, entry)
	if code != http.StatusConflict || !strings.Contains(body, `"reason":"trust_key_mismatch"`) {
		t.Fatalf("an unsigned approval at a replica without the key: %d %s", code, body)
	}
	g3 := newGuest(t, sim.Options{Measurement: &b3})
	if _, err := unsigned.c.Attest(context.Background(), g3.request(unsigned.challenge(t), false)); reasonOf(err) != "measurement_mismatch" {
		t.Fatalf("the unsigned approval affirmed: %v", err)
	}
	jws, _ := refvalues.SignEntry(key, refvalues.Measurement{Value: hex.EncodeToString(b3[:]), Label: "b3"}, time.Now())
	if code, body := adminDo(t, "POST", adminA+admin.PathMeasurements, jws); code != http.StatusCreated {
		t.Fatalf("approve: %d %s", code, body)
	}
	// The replica without the key withdraws what the layer approves:
	// it cannot verify it.
	waitFor(t, func() bool {
		var h v1.Health
		getJSON(t, unsigned.url+v1.PathReadyz, http.StatusOK, &h)
		return h.Status == "degraded" && strings.Contains(h.Error, "every replica of a fleet needs the same key")
	})
	if _, err := unsigned.c.Attest(context.Background(), g3.request(unsigned.challenge(t), false)); reasonOf(err) != "measurement_mismatch" {
		t.Fatalf("a replica without the key affirmed the layer's approval: %v", err)
	}
	for name, k := range map[string]string{"no trust key": "", "another trust key": otherTrust} {
		cfg := config.Default()
		cfg.DevSimulator, cfg.Offline, cfg.CertCacheDir, cfg.StateDir = true, true, t.TempDir(), t.TempDir()
		shared(&cfg)
		cfg.ReferenceValues = filepath.Join(t.TempDir(), "ref.yaml")
		writeFile(t, cfg.ReferenceValues, refYAML(""))
		cfg.RefvaluesTrustKey = k
		if k != "" {
			cfg.ReferenceValues = ""
		}
		app, err := New(context.Background(), cfg, Deps{})
		if err == nil {
			app.Close()
		}
		var te *admin.TrustError
		if !errors.As(err, &te) {
			t.Fatalf("%s: %v, want a trust key refusal", name, err)
		}
	}
}
