package policy

import (
	"bytes"
	"encoding/json"
	"reflect"

	"context"
	"github.com/open-policy-agent/opa/v1/ast"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/refvalues"
)

// The Rego unit tests of the default policy run with go test.
func TestRegoUnitTests(t *testing.T) {
	t.Parallel()
	results, err := tester.Run(context.Background(), "default.rego", "default_test.rego")
	if err != nil {
		t.Fatal(err)
	}
	if len(results) < 10 {
		t.Fatalf("only %d Rego tests ran", len(results))
	}
	for _, r := range results {
		if !r.Pass() {
			t.Errorf("%s: fail=%v err=%v", r.Name, r.Fail, r.Error)
		}
	}
}

var approved = strings.Repeat("5a", 48)

func claims(mut func(*attest.Claims)) *attest.Claims {
	c := &attest.Claims{
		TEE: "sev-snp", Product: "Milan", Signer: "vcek", ReportVersion: 5,
		Measurement: mustHex(approved), ReportedTCB: attest.TCB{Bootloader: 3, SNP: 8, Microcode: 115},
	}
	if mut != nil {
		mut(c)
	}
	return c
}

func mustHex(s string) attest.Hex {
	var h attest.Hex
	if err := h.UnmarshalJSON([]byte(`"` + s + `"`)); err != nil {
		panic(err)
	}
	return h
}

func set(mut func(*refvalues.Set)) *refvalues.Set {
	s := &refvalues.Set{Measurements: []refvalues.Measurement{{Value: approved, Label: "build-1", Resources: []string{"db-password"}}}}
	if mut != nil {
		mut(s)
	}
	return s
}

func engine(t testing.TB, module string, ref *refvalues.Set, now time.Time) *Engine {
	t.Helper()
	e, err := New(context.Background(), Options{Module: module, Reference: ref, Now: func() time.Time { return now }})
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func TestDefaultPolicy(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	past, future := now.Add(-time.Hour), now.Add(time.Hour)
	fmc := uint8(1)
	cases := []struct {
		name   string
		ref    *refvalues.Set
		claims *attest.Claims
		want   attest.Reason // "" = allow
	}{
		{"approved", set(nil), claims(nil), ""},
		{"approved, expires later", set(func(s *refvalues.Set) { s.Measurements[0].Expires = &future }), claims(nil), ""},
		{"expired reference value", set(func(s *refvalues.Set) { s.Measurements[0].Expires = &past }), claims(nil), attest.ReasonMeasurementMismatch},
		{"no reference values", nil, claims(nil), attest.ReasonMeasurementMismatch},
		{"unknown measurement", set(nil), claims(func(c *attest.Claims) { c.Measurement = mustHex(strings.Repeat("11", 48)) }), attest.ReasonMeasurementMismatch},
		{"debug", set(nil), claims(func(c *attest.Claims) { c.Policy.Debug = true }), attest.ReasonDebugEnabled},
		{"vmpl 1, allowed [0]", set(nil), claims(func(c *attest.Claims) { c.VMPL = 1 }), attest.ReasonVMPLNotAllowed},
		{"vmpl 1, allowed [0,1]", set(func(s *refvalues.Set) { s.AllowedVMPL = []int{0, 1} }), claims(func(c *attest.Claims) { c.VMPL = 1 }), ""},
		{"microcode under min", set(func(s *refvalues.Set) { s.MinTCB = &refvalues.TCB{Microcode: 200} }), claims(nil), attest.ReasonTCBBelowMinimum},
		{"bootloader under min", set(func(s *refvalues.Set) { s.MinTCB = &refvalues.TCB{Bootloader: 4} }), claims(nil), attest.ReasonTCBBelowMinimum},
		{"at min", set(func(s *refvalues.Set) { s.MinTCB = &refvalues.TCB{Bootloader: 3, SNP: 8, Microcode: 115} }), claims(nil), ""},
		{"Turin fmc under min", set(func(s *refvalues.Set) { s.MinTCB = &refvalues.TCB{FMC: 2} }), claims(func(c *attest.Claims) { c.ReportedTCB.FMC = &fmc }), attest.ReasonTCBBelowMinimum},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := engine(t, "", tc.ref, now).Evaluate(context.Background(), tc.claims)
			if err != nil {
				t.Fatal(err)
			}
			if got := attest.ReasonOf(d.Err()); got != tc.want {
				t.Fatalf("reason %q (%+v), want %q", got, d, tc.want)
			}
			if tc.want == "" && (d.Label != "build-1" || len(d.Resources) != 1) {
				t.Fatalf("allow without label/resources: %+v", d)
			}
		})
	}
}

func TestCustomPolicies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, module string
		want         attest.Reason
	}{
		{"own reason code", "package trustgate\ndecision := {\"allow\": false, \"reasons\": [\"policy_region\"]}\n", "policy_region"},
		{"undefined decision", "package trustgate\ndecision := 1 if false\n", attest.ReasonPolicyDenied},
		{"allow not a boolean", "package trustgate\ndecision := {\"allow\": \"yes\"}\n", attest.ReasonPolicyDenied},
		{"runtime error (strict builtins)", "package trustgate\ndecision := {\"allow\": to_number(\"x\") > 0}\n", attest.ReasonPolicyDenied},
		{"deny without reasons", "package trustgate\ndecision := {\"allow\": false}\n", attest.ReasonPolicyDenied},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := engine(t, tc.module, set(nil), time.Now()).Evaluate(context.Background(), claims(nil))
			if err == nil {
				err = d.Err()
			}
			if got := attest.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

func TestNetworkBuiltinsRefused(t *testing.T) {
	t.Parallel()
	module := "package trustgate\ndecision := {\"allow\": http.send({\"method\": \"get\", \"url\": \"http://127.0.0.1:1\"}).status_code == 200}\n"
	if _, err := New(context.Background(), Options{Module: module}); err == nil {
		t.Fatal("a policy using http.send compiled")
	}
}

func TestReloadAndID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := engine(t, "", set(nil), time.Now())
	id0 := e.ID()
	if !strings.HasPrefix(id0, "sha256:") {
		t.Fatalf("id %q", id0)
	}
	if err := e.Reload(ctx, "", "", set(func(s *refvalues.Set) { s.Measurements[0].Label = "build-2" })); err != nil {
		t.Fatal(err)
	}
	id1 := e.ID()
	if id1 == id0 {
		t.Fatal("id unchanged by new reference values")
	}
	if err := e.Reload(ctx, "package trustgate\ndecision := {", "broken.rego", set(nil)); err == nil {
		t.Fatal("broken module loaded")
	}
	if e.ID() != id1 || e.LastError() == nil {
		t.Fatal("a failed reload replaced the policy or left no error")
	}
	d, err := e.Evaluate(ctx, claims(nil))
	if err != nil || !d.Allow || d.Label != "build-2" {
		t.Fatalf("old policy not serving: %+v %v", d, err)
	}
	if err := e.Reload(ctx, DefaultModule()+"\n# changed\n", "p.rego", set(nil)); err != nil || e.ID() == id1 || e.LastError() != nil {
		t.Fatalf("policy change: %v, id %s", err, e.ID())
	}
}

func TestWatchReloadsFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	refPath := filepath.Join(dir, "ref.yaml")
	os.WriteFile(refPath, []byte("measurements: []\n"), 0o600)
	e := engine(t, "", &refvalues.Set{}, time.Now())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go Watch(ctx, e, "", refPath, 20*time.Millisecond, nil)
	os.WriteFile(refPath, []byte("measurements:\n  - value: \""+approved+"\"\n    label: b\n"), 0o600)
	deadline := time.Now().Add(5 * time.Second)
	for {
		d, _ := e.Evaluate(ctx, claims(nil))
		if d.Allow {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("new reference values not picked up")
		}
		time.Sleep(20 * time.Millisecond)
	}
	os.WriteFile(refPath, []byte("measurements: [{value: nothex, label: x}]\n"), 0o600)
	for e.LastError() == nil {
		if time.Now().After(deadline) {
			t.Fatal("broken reference values not reported")
		}
		time.Sleep(20 * time.Millisecond)
	}
	if d, _ := e.Evaluate(ctx, claims(nil)); !d.Allow {
		t.Fatal("old reference values were dropped")
	}
}

func BenchmarkEvaluate(b *testing.B) {
	e := engine(b, "", set(nil), time.Now())
	c := claims(nil)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if d, err := e.Evaluate(ctx, c); err != nil || !d.Allow {
			b.Fatal(d, err)
		}
	}
}

// The policy input built from the struct is the claims' JSON document.
func TestInputValueMatchesJSON(t *testing.T) {
	t.Parallel()
	fmc := uint8(3)
	for _, c := range []*attest.Claims{claims(nil), claims(func(c *attest.Claims) {
		c.ReportedTCB.FMC = &fmc
		c.Policy.Debug = true
		c.ChipID = mustHex(strings.Repeat("ab", 64))
		c.CurrentVersion = "1.58.3"
	})} {
		b, _ := json.Marshal(c)
		want, err := ast.ValueFromReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		got, err := new(fieldCache).inputValue(reflect.ValueOf(c))
		if err != nil {
			t.Fatal(err)
		}
		if got.Compare(want) != 0 {
			t.Fatalf("input differs:\n got %v\nwant %v", got, want)
		}
	}
}
