package admin

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/policy"
	"github.com/trustgate/trustgate/internal/refvalues"
	"github.com/trustgate/trustgate/internal/testkit"
)

var (
	valA = strings.Repeat("5a", 48)
	valB = strings.Repeat("42", 48)
)

const token = "s3cret-admin-token-0123456789"

func fileSet() *refvalues.Set {
	return &refvalues.Set{Measurements: []refvalues.Measurement{{Value: valA, Label: "file-1"}}}
}

// allows reports the label the engine's policy allows a guest of
// measurement value with, "" for a deny.
func allows(t *testing.T, e *policy.Engine, value string) string {
	t.Helper()
	c := &attest.Claims{TEE: "sev-snp", Measurement: mustHex(value), Policy: attest.GuestPolicy{}}
	d, err := e.Evaluate(context.Background(), c)
	if err != nil || !d.Allow {
		return ""
	}
	return d.Label
}

func mustHex(s string) attest.Hex {
	var h attest.Hex
	if err := h.UnmarshalJSON([]byte(`"` + s + `"`)); err != nil {
		panic(err)
	}
	return h
}

// syncBuffer is a bytes.Buffer safe for a logger and a reader.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}
func (s *syncBuffer) String() string { s.mu.Lock(); defer s.mu.Unlock(); return s.b.String() }

type fixture struct {
	engine *policy.Engine
	layer  *Layer
	srv    *httptest.Server
	logs   *syncBuffer
}

func newFixture(t *testing.T, store Store, trust *ecdsa.PublicKey, o Options) *fixture {
	t.Helper()
	e, err := policy.New(context.Background(), policy.Options{Reference: fileSet(), TrustKey: trust})
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewJSONHandler(logs, nil))
	l := newLayer(LayerOptions{Store: store, Engine: e, TrustKey: trust, Logger: log})
	if err := l.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	o.Layer, o.Logger = l, log
	if o.Tokens == nil && !o.ClientCerts {
		o.Tokens = []Token{{Secret: []byte(token)}}
	}
	srv := httptest.NewServer(NewHandler(o))
	t.Cleanup(srv.Close)
	return &fixture{engine: e, layer: l, srv: srv, logs: logs}
}

func newLayer(o LayerOptions) *Layer {
	l, err := NewLayer(o)
	if err != nil {
		panic(err)
	}
	return l
}

type answer struct {
	code   int
	reason string
	body   []byte
}

func (f *fixture) do(t *testing.T, method, path, auth string, body string) answer {
	t.Helper()
	return do(t, f.srv.Client(), f.srv.URL, method, path, auth, body)
}

func do(t *testing.T, c *http.Client, base, method, path, auth string, body string) answer {
	t.Helper()
	req, _ := http.NewRequest(method, base+path, strings.NewReader(body))
	if auth != "" {
		req.Header.Set("Authorization", auth)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	var e apiError
	json.Unmarshal(b, &e)
	return answer{code: resp.StatusCode, reason: e.Reason, body: b}
}

func entry(value, label string) string {
	b, _ := json.Marshal(refvalues.Measurement{Value: value, Label: label})
	return string(b)
}

// Every call needs the token (compared whole) or a verified client
// certificate: anything else is 401, whatever the route.
func TestAuth(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &MemoryStore{}, nil, Options{})
	for _, auth := range []string{"", "Bearer", "Bearer wrong", "Bearer " + token + "x", "Bearer " + token[:len(token)-1], "Basic " + token, token} {
		for _, r := range []struct{ method, path, body string }{
			{"GET", PathReferenceValues, ""},
			{"POST", PathMeasurements, entry(valB, "b2")},
			{"DELETE", PathMeasurements + "/file-1", ""},
			{"GET", PathLaunches, ""},
		} {
			if a := f.do(t, r.method, r.path, auth, r.body); a.code != http.StatusUnauthorized || a.reason != ReasonUnauthorized {
				t.Errorf("%s %s with %q: %d %s", r.method, r.path, auth, a.code, a.reason)
			}
		}
	}
	if allows(t, f.engine, valB) != "" || allows(t, f.engine, valA) != "file-1" {
		t.Fatal("an unauthorised call changed the reference values")
	}
	if a := f.do(t, "GET", PathReferenceValues, "bearer "+token, ""); a.code != http.StatusOK {
		t.Fatalf("valid token: %d %s", a.code, a.body)
	}
	if a := f.do(t, "GET", "/admin/v1/launches", "Bearer "+token, ""); a.code != http.StatusOK {
		t.Fatalf("launches: %d", a.code)
	}
}

// Approve, list, withdraw: each change is in force at once, answers with
// the new appraisal-policy-id, and writes one audit line naming who (never
// the token), what, the label and the new id.
func TestApproveWithdraw(t *testing.T) {
	t.Parallel()
	f := newFixture(t, &MemoryStore{}, nil, Options{})
	auth := "Bearer " + token
	id0 := f.engine.ID()

	a := f.do(t, "POST", PathMeasurements, auth, entry(valB, "build-2"))
	var ch Changed
	json.Unmarshal(a.body, &ch)
	if a.code != http.StatusCreated || ch.Label != "build-2" || ch.AppraisalPolicyID != f.engine.ID() || ch.AppraisalPolicyID == id0 || ch.AdminVersion != 1 {
		t.Fatalf("approve: %d %s", a.code, a.body)
	}
	if allows(t, f.engine, valB) != "build-2" {
		t.Fatal("approved value not in force")
	}
	id1 := f.engine.ID()

	// The same label again, from the file or the layer: 409.
	for _, l := range []string{"build-2", "file-1"} {
		if a := f.do(t, "POST", PathMeasurements, auth, entry(valB, l)); a.code != http.StatusConflict || a.reason != ReasonConflict {
			t.Fatalf("duplicate %s: %d %s", l, a.code, a.body)
		}
	}
	// Not one valid entry: 400.
	for _, body := range []string{`{"value":"` + valB + `","label":"x","extra":1}`, `{"value":"XYZ","label":"x"}`, `{"value":"` + valB + `"}`, `[]`, `not json`} {
		if a := f.do(t, "POST", PathMeasurements, auth, body); a.code != http.StatusBadRequest || a.reason != ReasonMalformedRequest {
			t.Fatalf("bad entry %s: %d %s", body, a.code, a.body)
		}
	}
	if a := f.do(t, "POST", PathMeasurements, auth, strings.Repeat(" ", MaxBodySize+1)); a.code != http.StatusRequestEntityTooLarge {
		t.Fatalf("large body: %d", a.code)
	}

	// Withdraw the file's own entry.
	if a := f.do(t, "DELETE", PathMeasurements+"/file-1", auth, ""); a.code != http.StatusNoContent {
		t.Fatalf("withdraw file-1: %d %s", a.code, a.body)
	}
	if allows(t, f.engine, valA) != "" {
		t.Fatal("withdrawn file entry still allowed")
	}
	if a := f.do(t, "DELETE", PathMeasurements+"/file-1", auth, ""); a.code != http.StatusNotFound || a.reason != ReasonNotFound {
		t.Fatalf("withdraw twice: %d", a.code)
	}
	if a := f.do(t, "DELETE", PathMeasurements+"/nobody", auth, ""); a.code != http.StatusNotFound {
		t.Fatalf("withdraw unknown: %d", a.code)
	}
	// A withdrawn label may be approved again.
	if a := f.do(t, "POST", PathMeasurements, auth, entry(valA, "file-1")); a.code != http.StatusCreated {
		t.Fatalf("re-approve file-1: %d %s", a.code, a.body)
	}

	a = f.do(t, "GET", PathReferenceValues, auth, "")
	var rv ReferenceValues
	if err := json.Unmarshal(a.body, &rv); err != nil || a.code != http.StatusOK {
		t.Fatalf("list: %d %s", a.code, a.body)
	}
	var labels []string
	for _, m := range rv.Effective.Measurements {
		labels = append(labels, m.Label)
	}
	if strings.Join(labels, ",") != "build-2,file-1" || rv.AdminVersion != 3 || rv.AppraisalPolicyID != f.engine.ID() ||
		rv.Admin["build-2"].Entry == nil || !strings.HasPrefix(rv.Admin["build-2"].By, "token:sha256:") {
		t.Fatalf("list: %s", a.body)
	}

	// One audit line per call: the 3 changes accepted, and every
	// refusal and read too.
	var audits, all []map[string]any
	for _, line := range strings.Split(strings.TrimSpace(f.logs.String()), "\n") {
		var m map[string]any
		json.Unmarshal([]byte(line), &m)
		if m["audit"] != "admin" {
			continue
		}
		all = append(all, m)
		if m["outcome"] == OutcomeAccepted && m["action"] != "list" {
			audits = append(audits, m)
		}
	}
	if len(audits) != 3 || len(all) != 14 {
		t.Fatalf("%d changes and %d audit lines, want 3 and 14:\n%s", len(audits), len(all), f.logs.String())
	}
	if r := all[1]; r["action"] != "approve" || r["outcome"] != OutcomeRefused || r["reason"] != ReasonConflict || r["label"] != "build-2" {
		t.Fatalf("the refused duplicate: %v", r)
	}
	first := audits[0]
	if first["action"] != "approve" || first["label"] != "build-2" || first["appraisal_policy_id"] != id1 ||
		!strings.HasPrefix(first["who"].(string), "token:sha256:") || audits[1]["action"] != "withdraw" {
		t.Fatalf("audit line: %v", first)
	}
	if logs := f.logs.String(); strings.Contains(logs, token) || strings.Contains(logs, valA) || strings.Contains(logs, valB) {
		t.Fatalf("the log holds the token or a measurement:\n%s", logs)
	}
}

// With a trusted key, an approval is accepted only as a compact JWS under
// it; the layer keeps the JWS and verifies it again wherever it loads.
func TestSignedApprovals(t *testing.T) {
	t.Parallel()
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	store := &MemoryStore{}
	f := newFixture(t, store, &key.PublicKey, Options{})
	auth := "Bearer " + token
	m := refvalues.Measurement{Value: valB, Label: "build-2"}
	bad, _ := refvalues.SignEntry(other, m, time.Now())
	for _, body := range []string{entry(valB, "build-2"), bad, "a.b.c"} {
		if a := f.do(t, "POST", PathMeasurements, auth, body); a.code != http.StatusForbidden || a.reason != ReasonSignatureInvalid {
			t.Fatalf("unsigned or wrongly signed %.20s: %d %s", body, a.code, a.body)
		}
	}
	if allows(t, f.engine, valB) != "" {
		t.Fatal("an unsigned entry came into force")
	}
	good, _ := refvalues.SignEntry(key, m, time.Now())
	if a := f.do(t, "POST", PathMeasurements, auth, good); a.code != http.StatusCreated {
		t.Fatalf("signed entry: %d %s", a.code, a.body)
	}
	if allows(t, f.engine, valB) != "build-2" {
		t.Fatal("signed entry not in force")
	}

	// A record written past the API (straight into the store) without a
	// valid JWS withdraws its label instead, and is reported.
	fp := Change{TrustKey: TrustKeyFingerprint(&key.PublicKey)}
	store.Put(context.Background(), "file-1", refvalues.Record{}, fp) // withdraw, so the next can approve
	store.Put(context.Background(), "file-1", refvalues.Record{Entry: &refvalues.Measurement{Value: valA, Label: "file-1"}, JWS: bad, At: time.Now().Add(time.Second)}, fp)
	if err := f.layer.Sync(context.Background()); err != nil {
		t.Fatal(err)
	}
	if allows(t, f.engine, valA) != "" || f.layer.LastError() == nil {
		t.Fatalf("an unsigned record in the store came into force (last error %v)", f.layer.LastError())
	}
}

// A client certificate under the admin CA is an identity too: its subject
// is the audit's who.
func TestClientCertificate(t *testing.T) {
	t.Parallel()
	pki := testkit.NewPKI(t)
	e, _ := policy.New(context.Background(), policy.Options{Reference: fileSet()})
	logs := &syncBuffer{}
	l := newLayer(LayerOptions{Store: &MemoryStore{}, Engine: e})
	l.Sync(context.Background())
	srv := httptest.NewUnstartedServer(NewHandler(Options{Layer: l, ClientCerts: true, Logger: slog.New(slog.NewJSONHandler(logs, nil))}))
	srv.TLS = &tls.Config{Certificates: []tls.Certificate{pki.Server}, ClientCAs: pki.Pool, ClientAuth: tls.VerifyClientCertIfGiven}
	srv.StartTLS()
	defer srv.Close()
	anon := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool}}}
	if a := do(t, anon, srv.URL, "GET", PathReferenceValues, "", ""); a.code != http.StatusUnauthorized {
		t.Fatalf("no certificate: %d", a.code)
	}
	if a := do(t, anon, srv.URL, "GET", PathReferenceValues, "Bearer "+token, ""); a.code != http.StatusUnauthorized {
		t.Fatalf("a token where none is configured: %d", a.code)
	}
	cert, err := tls.LoadX509KeyPair(pki.ClientCert, pki.ClientKey)
	if err != nil {
		t.Fatal(err)
	}
	c := &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pki.Pool, Certificates: []tls.Certificate{cert}}}}
	if a := do(t, c, srv.URL, "POST", PathMeasurements, "", entry(valB, "build-2")); a.code != http.StatusCreated {
		t.Fatalf("with certificate: %d %s", a.code, a.body)
	}
	if !strings.Contains(logs.String(), `"who":"cert:CN=agent-1"`) {
		t.Fatalf("audit who: %s", logs.String())
	}
}

// Replicas sharing a Redis share the layer: a change made at one is in
// force at the other about a second later (it polls; SPEC: within 3 s),
// and at a replica started later; a Redis that lost the layer is written
// back by a running replica, which never drops it.
func TestRedisLayerShared(t *testing.T) {
	t.Parallel()
	rs := testkit.StartRedisServer(t)
	newReplica := func() (*policy.Engine, *Layer, *syncBuffer) {
		e, err := policy.New(context.Background(), policy.Options{Reference: fileSet(), AwaitOverlay: true})
		if err != nil {
			t.Fatal(err)
		}
		logs := &syncBuffer{}
		l := newLayer(LayerOptions{Store: NewRedisStore(rs.Client, time.Second), Engine: e, Logger: slog.New(slog.NewJSONHandler(logs, nil))})
		return e, l, logs
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	e1, l1, _ := newReplica()
	e2, l2, _ := newReplica()
	for _, l := range []*Layer{l1, l2} {
		if err := l.Sync(ctx); err != nil {
			t.Fatal(err)
		}
	}
	go l2.Follow(ctx, time.Second)
	srv := httptest.NewServer(NewHandler(Options{Layer: l1, Tokens: []Token{{Secret: []byte(token)}}}))
	defer srv.Close()
	auth := "Bearer " + token

	start := time.Now()
	if a := do(t, srv.Client(), srv.URL, "POST", PathMeasurements, auth, entry(valB, "build-2")); a.code != http.StatusCreated {
		t.Fatalf("approve: %d %s", a.code, a.body)
	}
	if a := do(t, srv.Client(), srv.URL, "DELETE", PathMeasurements+"/file-1", auth, ""); a.code != http.StatusNoContent {
		t.Fatalf("withdraw: %d %s", a.code, a.body)
	}
	for allows(t, e2, valB) != "build-2" || allows(t, e2, valA) != "" {
		// SPEC: 3 s. The replica polls every second, so it takes about
		// one; the bound leaves room for a busy CI machine.
		if time.Since(start) > 5*time.Second {
			t.Fatal("the change is not in force at the other replica within 5 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Logf("in force at the other replica after %v", time.Since(start).Round(time.Millisecond))
	if e1.ID() != e2.ID() {
		t.Fatal("replicas disagree on the appraisal-policy-id")
	}

	// A replica (re)started later reads the layer at start.
	e3, l3, _ := newReplica()
	if _, err := e3.Evaluate(ctx, &attest.Claims{Measurement: mustHex(valB)}); attest.ReasonOf(err) != attest.ReasonStoreUnavailable {
		t.Fatalf("before reading the layer: %v", err)
	}
	if err := l3.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if allows(t, e3, valB) != "build-2" || allows(t, e3, valA) != "" || e3.ID() != e1.ID() {
		t.Fatal("a restarted replica did not get the layer")
	}

	// Redis loses its data: the running replicas keep the layer in force
	// and write it back, so a replica started afterwards has it too.
	rs.Restart()
	waitUntil(t, func() bool { v, err := NewRedisStore(rs.Client, time.Second).Version(ctx); return err == nil && v == 2 })
	if allows(t, e2, valB) != "build-2" || allows(t, e2, valA) != "" {
		t.Fatal("a Redis data loss dropped the layer at a running replica")
	}
	e4, l4, _ := newReplica()
	if err := l4.Sync(ctx); err != nil {
		t.Fatal(err)
	}
	if allows(t, e4, valB) != "build-2" || allows(t, e4, valA) != "" || e4.ID() != e1.ID() {
		t.Fatal("a replica started after the loss did not get the restored layer")
	}

	// A loss that something wrote over (version 1) before a replica
	// noticed: still older than the layer held (version 2), so it is
	// written over in turn, and nothing is reported once healed.
	rs.Restart()
	if _, err := NewRedisStore(rs.Client, time.Second).Put(ctx, "other", refvalues.Record{By: "elsewhere"}, Change{TrustKey: "none"}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, func() bool {
		o, err := NewRedisStore(rs.Client, time.Second).Load(ctx)
		return err == nil && o.Version == 2 && o.Records["other"].By == ""
	})
	if allows(t, e2, valB) != "build-2" || allows(t, e2, valA) != "" || l2.LastError() != nil {
		t.Fatalf("the running replica dropped its layer, or stays degraded: %v", l2.LastError())
	}
}

func waitUntil(t *testing.T, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); {
		if time.Now().After(deadline) {
			t.Fatal("condition not reached in 10 s")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
