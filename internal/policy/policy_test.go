package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/tester"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/refvalues"
)

// The Rego unit tests of the default policy run with go test; none
// running is a failure too.
func TestRegoUnitTests(t *testing.T) {
	t.Parallel()
	results, err := tester.Run(context.Background(), "default.rego", "default_test.rego")
	if err != nil {
		t.Fatal(err)
	}
	if len(results) == 0 {
		t.Fatal("no Rego test ran")
	}
	for _, r := range results {
		if !r.Pass() {
			t.Errorf("%s: fail=%v err=%v", r.Name, r.Fail, r.Error)
		}
	}
}

var (
	approved = strings.Repeat("5a", 48)
	next     = strings.Repeat("42", 48)
)

// claims are realistic claims of a verified Milan report (the trustee
// report's TCB), with mut applied.
func claims(mut func(*attest.Claims)) *attest.Claims {
	c := &attest.Claims{
		TEE: "sev-snp", Product: "Milan", Signer: "vcek", ReportVersion: 2, GuestSVN: 4,
		Measurement:    mustHex(approved),
		HostData:       mustHex(strings.Repeat("00", 32)),
		ReportData:     mustHex(strings.Repeat("11", 64)),
		FamilyID:       mustHex(strings.Repeat("00", 16)),
		ImageID:        mustHex(strings.Repeat("00", 16)),
		IDKeyDigest:    mustHex(strings.Repeat("00", 48)),
		ReportID:       mustHex(strings.Repeat("33", 32)),
		ReportIDMA:     mustHex(strings.Repeat("ff", 32)),
		ChipID:         mustHex(strings.Repeat("cd", 64)),
		Policy:         attest.GuestPolicy{ABIMajor: 1, ABIMinor: 51, SMT: true},
		CurrentTCB:     attest.TCB{Bootloader: 3, SNP: 8, Microcode: 206},
		CommittedTCB:   attest.TCB{Bootloader: 3, SNP: 8, Microcode: 115},
		ReportedTCB:    attest.TCB{Bootloader: 3, SNP: 8, Microcode: 115},
		LaunchTCB:      attest.TCB{Bootloader: 3, SNP: 8, Microcode: 115},
		CurrentVersion: "1.55.21", CommittedVersion: "1.55.21",
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

// set is one approved measurement (build-1, may receive db-password), with
// mut applied.
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
	past, future := now.Add(-time.Second), now.Add(time.Hour)
	fmc := func(v uint8) func(*attest.Claims) {
		return func(c *attest.Claims) { c.Product = "Turin"; c.ReportedTCB.FMC = &v }
	}
	minTCB := func(tcb refvalues.TCB) *refvalues.Set { return set(func(s *refvalues.Set) { s.MinTCB = &tcb }) }
	staged := set(func(s *refvalues.Set) {
		s.Measurements = append(s.Measurements, refvalues.Measurement{Value: next, Label: "build-2", Resources: []string{"db-password", "api-key"}})
	})
	cases := []struct {
		name      string
		ref       *refvalues.Set
		claims    *attest.Claims
		want      attest.Reason // "" = allow
		label     string
		resources []string
	}{
		{"approved", set(nil), claims(nil), "", "build-1", []string{"db-password"}},
		{"approved, expires later", set(func(s *refvalues.Set) { s.Measurements[0].Expires = &future }), claims(nil), "", "build-1", []string{"db-password"}},
		{"approved, no resources", set(func(s *refvalues.Set) { s.Measurements[0].Resources = nil }), claims(nil), "", "build-1", nil},
		{"expired reference value", set(func(s *refvalues.Set) { s.Measurements[0].Expires = &past }), claims(nil), attest.ReasonMeasurementMismatch, "", nil},
		{"expires exactly now", set(func(s *refvalues.Set) { s.Measurements[0].Expires = &now }), claims(nil), attest.ReasonMeasurementMismatch, "", nil},
		{"nil reference values", nil, claims(nil), attest.ReasonMeasurementMismatch, "", nil},
		{"empty reference values", &refvalues.Set{}, claims(nil), attest.ReasonMeasurementMismatch, "", nil},
		{"unknown measurement", set(nil), claims(func(c *attest.Claims) { c.Measurement = mustHex(strings.Repeat("11", 48)) }), attest.ReasonMeasurementMismatch, "", nil},
		{"debug", set(nil), claims(func(c *attest.Claims) { c.Policy.Debug = true }), attest.ReasonDebugEnabled, "", nil},
		{"vmpl 1, allowed default [0]", set(nil), claims(func(c *attest.Claims) { c.VMPL = 1 }), attest.ReasonVMPLNotAllowed, "", nil},
		{"vmpl 1, allowed [0]", set(func(s *refvalues.Set) { s.AllowedVMPL = []int{0} }), claims(func(c *attest.Claims) { c.VMPL = 1 }), attest.ReasonVMPLNotAllowed, "", nil},
		{"vmpl 1, allowed [0,1]", set(func(s *refvalues.Set) { s.AllowedVMPL = []int{0, 1} }), claims(func(c *attest.Claims) { c.VMPL = 1 }), "", "build-1", []string{"db-password"}},
		{"vmpl 0, allowed [1]", set(func(s *refvalues.Set) { s.AllowedVMPL = []int{1} }), claims(nil), attest.ReasonVMPLNotAllowed, "", nil},
		{"tcb at min_tcb", minTCB(refvalues.TCB{Bootloader: 3, SNP: 8, Microcode: 115}), claims(nil), "", "build-1", []string{"db-password"}},
		{"bootloader under min", minTCB(refvalues.TCB{Bootloader: 4}), claims(nil), attest.ReasonTCBBelowMinimum, "", nil},
		{"tee under min", minTCB(refvalues.TCB{TEE: 1}), claims(nil), attest.ReasonTCBBelowMinimum, "", nil},
		{"snp under min", minTCB(refvalues.TCB{SNP: 9}), claims(nil), attest.ReasonTCBBelowMinimum, "", nil},
		{"microcode under min", minTCB(refvalues.TCB{Microcode: 116}), claims(nil), attest.ReasonTCBBelowMinimum, "", nil},
		{"Turin fmc under min", minTCB(refvalues.TCB{FMC: 2}), claims(fmc(1)), attest.ReasonTCBBelowMinimum, "", nil},
		{"Turin fmc at min", minTCB(refvalues.TCB{FMC: 1}), claims(fmc(1)), "", "build-1", []string{"db-password"}},
		{"fmc floor, Milan report", minTCB(refvalues.TCB{FMC: 2}), claims(nil), "", "build-1", []string{"db-password"}},
		{"staged rollout, old build", staged, claims(nil), "", "build-1", []string{"db-password"}},
		{"staged rollout, new build", staged, claims(func(c *attest.Claims) { c.Measurement = mustHex(next) }), "", "build-2", []string{"db-password", "api-key"}},
		{"every failure, first reported", set(nil), claims(func(c *attest.Claims) { c.Measurement = mustHex(next); c.Policy.Debug = true }), attest.ReasonMeasurementMismatch, "", nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := engine(t, "", tc.ref, now).Evaluate(context.Background(), tc.claims)
			if err != nil {
				t.Fatal(err)
			}
			err = d.Err()
			if got := attest.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%+v), want %q", got, d, tc.want)
			}
			if tc.want != "" {
				var ae *attest.Error
				if !errors.As(err, &ae) || d.Allow || len(d.Reasons) == 0 || d.Reasons[0] != string(tc.want) {
					t.Fatalf("deny %+v: %v", d, err)
				}
				return
			}
			if !d.Allow || d.Label != tc.label || !slices.Equal(d.Resources, tc.resources) || len(d.Reasons) != 0 {
				t.Fatalf("allow %+v, want label %q resources %q", d, tc.label, tc.resources)
			}
		})
	}
}

// A deny lists every failed check, in SPEC order.
func TestDefaultPolicyListsEveryFailure(t *testing.T) {
	t.Parallel()
	ref := set(func(s *refvalues.Set) { s.MinTCB = &refvalues.TCB{SNP: 9} })
	c := claims(func(c *attest.Claims) { c.Measurement = mustHex(next); c.Policy.Debug = true; c.VMPL = 2 })
	d, err := engine(t, "", ref, time.Now()).Evaluate(context.Background(), c)
	want := []string{"measurement_mismatch", "debug_enabled", "vmpl_not_allowed", "tcb_below_minimum"}
	if err != nil || d.Allow || !reflect.DeepEqual(d.Reasons, want) {
		t.Fatalf("%+v %v, want reasons %q", d, err, want)
	}
}

// A policy may declare only constant, well-formed reason codes (issue 21,
// item 9); they are listed by ReasonCodes.
func TestDeclaredReasonCodes(t *testing.T) {
	t.Parallel()
	e := engine(t, "package trustgate\nreason_codes := [\"policy_b\", \"policy_a\"]\ndecision := {\"allow\": false}\n", set(nil), time.Now())
	if got := e.ReasonCodes(); !reflect.DeepEqual(got, []string{"policy_a", "policy_b"}) {
		t.Errorf("ReasonCodes = %q", got)
	}
	if got := engine(t, "", set(nil), time.Now()).ReasonCodes(); !reflect.DeepEqual(got, []string{"policy_tcb_status"}) {
		t.Errorf("default policy declares %q", got)
	}
	for name, mod := range map[string]string{
		"not of the form":   "reason_codes := {\"region\"}",
		"not strings":       "reason_codes := {1}",
		"not a collection":  "reason_codes := \"policy_a\"",
		"built from input":  "reason_codes := {concat(\"\", [\"policy_\", input.chip_id])}\nx := 1",
		"more than allowed": "reason_codes := {sprintf(\"policy_%d\", [i]) | some i in numbers.range(1, 33)}",
	} {
		_, err := New(context.Background(), Options{Module: "package trustgate\n" + mod + "\ndecision := {\"allow\": false}\n"})
		if name == "built from input" {
			// Undefined without input: nothing is declared.
			if err != nil {
				t.Errorf("%s: %v", name, err)
			}
			continue
		}
		if err == nil {
			t.Errorf("%s: loaded", name)
		}
	}
}

func TestCustomPolicies(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, module string
		want         attest.Reason // "" = allow
		cleanDeny    bool          // a Decision, not an evaluation error
	}{
		{"own reason code", "package trustgate\nreason_codes := {\"policy_region\"}\ndecision := {\"allow\": false, \"reasons\": [\"policy_region\"]}\n", "policy_region", true},
		{"own reason code not declared", "package trustgate\ndecision := {\"allow\": false, \"reasons\": [\"policy_region\"]}\n", attest.ReasonPolicyDenied, true},
		{"reason code built from a claim", "package trustgate\nreason_codes := {\"policy_region\"}\ndecision := {\"allow\": false, \"reasons\": [concat(\"\", [\"policy_\", substring(input.chip_id, 0, 39)]), \"policy_region\"]}\n", "policy_region", true},
		{"only a reason code built from a claim", "package trustgate\nreason_codes := {\"policy_region\"}\ndecision := {\"allow\": false, \"reasons\": [concat(\"\", [\"policy_\", substring(input.chip_id, 0, 39)])]}\n", attest.ReasonPolicyDenied, true},
		{"built-in reason code", "package trustgate\ndecision := {\"allow\": false, \"reasons\": [\"note\", \"debug_enabled\"]}\n", attest.ReasonDebugEnabled, true},
		{"deny without reasons", "package trustgate\ndecision := {\"allow\": false}\n", attest.ReasonPolicyDenied, true},
		{"allow using the reference values", "package trustgate\ndecision := {\"allow\": input.measurement in {m.value | some m in data.trustgate.reference.measurements}, \"label\": \"custom\"}\n", "", true},
		{"undefined decision", "package trustgate\ndecision := 1 if false\n", attest.ReasonPolicyDenied, false},
		{"no decision rule", "package trustgate\nallow := true\n", attest.ReasonPolicyDenied, false},
		{"allow not a boolean", "package trustgate\ndecision := {\"allow\": \"yes\"}\n", attest.ReasonPolicyDenied, false},
		{"decision not an object", "package trustgate\ndecision := true\n", attest.ReasonPolicyDenied, false},
		{"reasons not strings", "package trustgate\ndecision := {\"allow\": false, \"reasons\": [1]}\n", attest.ReasonPolicyDenied, false},
		{"resources not a list", "package trustgate\ndecision := {\"allow\": true, \"resources\": \"all\"}\n", attest.ReasonPolicyDenied, false},
		{"unknown key", "package trustgate\ndecision := {\"allow\": true, \"resource\": [\"x\"]}\n", attest.ReasonPolicyDenied, false},
		{"allow with reasons", "package trustgate\ndecision := {\"allow\": true, \"reasons\": [\"measurement_mismatch\"], \"label\": \"x\"}\n", attest.ReasonPolicyDenied, false},
		{"runtime error (strict builtins)", "package trustgate\ndecision := {\"allow\": to_number(input.tee) > 0}\n", attest.ReasonPolicyDenied, false},
		{"conflicting values", "package trustgate\ndecision := {\"allow\": true} if input.vmpl == 0\ndecision := {\"allow\": false} if input.tee == \"sev-snp\"\n", attest.ReasonPolicyDenied, false},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d, err := engine(t, tc.module, set(nil), time.Now()).Evaluate(context.Background(), claims(nil))
			if (err == nil) != tc.cleanDeny {
				t.Fatalf("evaluation error %v, decision %+v", err, d)
			}
			if err == nil {
				err = d.Err()
			} else if d.Allow {
				t.Fatal("an evaluation error came with allow")
			}
			if got := attest.ReasonOf(err); got != tc.want {
				t.Fatalf("reason %q (%v), want %q", got, err, tc.want)
			}
		})
	}
}

// An evaluation whose context ends is a deny, whether the context ended
// before it started or while it ran (a policy that would run for minutes
// stops within the deadline).
func TestEvaluationStopsWithItsContext(t *testing.T) {
	t.Parallel()
	slow := "package trustgate\ndecision := {\"allow\": count([x | some x in numbers.range(1, 100000000); x % 7 == 0]) > 0}\n"
	e := engine(t, slow, set(nil), time.Now())

	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if d, err := e.Evaluate(ctx, claims(nil)); err == nil || d.Allow || attest.ReasonOf(err) != attest.ReasonPolicyDenied {
		t.Fatalf("cancelled before: decision %+v, error %v", d, err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	start := time.Now()
	d, err := e.Evaluate(ctx, claims(nil))
	if err == nil || d.Allow || attest.ReasonOf(err) != attest.ReasonPolicyDenied {
		t.Fatalf("deadline during evaluation: decision %+v, error %v", d, err)
	}
	if took := time.Since(start); took > 10*time.Second {
		t.Fatalf("the evaluation ran on for %v after its deadline", took)
	}
}

// Builtins that reach the network, the environment or the logs do not
// compile.
func TestRefusedBuiltins(t *testing.T) {
	t.Parallel()
	cases := map[string]string{
		"http.send":          `http.send({"method": "get", "url": "http://127.0.0.1:1"}).status_code == 200`,
		"net.lookup_ip_addr": `count(net.lookup_ip_addr("localhost")) > 0`,
		"net.cidr_contains":  `net.cidr_contains("10.0.0.0/8", "10.0.0.1")`,
		"opa.runtime":        `opa.runtime().env.HOME != ""`,
		"rand.intn":          `rand.intn("x", 2) == 0`,
	}
	for name, expr := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			module := "package trustgate\ndecision := {\"allow\": true} if " + expr + "\n"
			if _, err := New(context.Background(), Options{Module: module}); err == nil {
				t.Fatalf("a policy using %s compiled", name)
			}
		})
	}
}

func TestReloadAndID(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := engine(t, "", set(nil), time.Now())
	id0 := e.ID()
	if !strings.HasPrefix(id0, "sha256:") || len(id0) != len("sha256:")+64 {
		t.Fatalf("id %q", id0)
	}
	if same := engine(t, DefaultModule(), set(nil), time.Now()); same.ID() != id0 {
		t.Fatal("the same policy and reference values gave another id")
	}
	if err := e.Reload(ctx, "", set(func(s *refvalues.Set) { s.Measurements[0].Label = "build-2" })); err != nil {
		t.Fatal(err)
	}
	id1 := e.ID()
	if id1 == id0 {
		t.Fatal("id unchanged by new reference values")
	}
	d, err := e.Evaluate(ctx, claims(nil))
	if err != nil || d.Label != "build-2" {
		t.Fatalf("reload not in effect: %+v %v", d, err)
	}

	if err := e.Reload(ctx, "package trustgate\ndecision := {", set(nil)); err == nil {
		t.Fatal("broken module loaded")
	}
	if e.ID() != id1 || e.LastError() == nil {
		t.Fatal("a failed reload replaced the policy or left no error")
	}
	if d, err := e.Evaluate(ctx, claims(nil)); err != nil || !d.Allow || d.Label != "build-2" {
		t.Fatalf("old policy not serving: %+v %v", d, err)
	}

	if err := e.Reload(ctx, DefaultModule()+"\n# changed\n", set(nil)); err != nil || e.ID() == id1 || e.ID() == id0 || e.LastError() != nil {
		t.Fatalf("policy change: %v, id %s, last error %v", err, e.ID(), e.LastError())
	}
}

// Evaluations running during reloads always see one whole policy.
func TestReloadWhileEvaluating(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	e := engine(t, "", set(nil), time.Now())
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for range 2 {
		wg.Go(func() {
			for {
				select {
				case <-stop:
					return
				default:
				}
				d, err := e.Evaluate(ctx, claims(nil))
				if err != nil || !d.Allow || (d.Label != "build-1" && d.Label != "build-2") {
					t.Errorf("%+v %v", d, err)
					return
				}
			}
		})
	}
	for i := range 10 {
		label := []string{"build-1", "build-2"}[i%2]
		if err := e.Reload(ctx, "", set(func(s *refvalues.Set) { s.Measurements[0].Label = label })); err != nil {
			t.Error(err)
		}
	}
	close(stop)
	wg.Wait()
}

// LastError leaves out the policy's source lines, which OPA's compile
// errors quote.
func TestLastErrorQuotesNoSource(t *testing.T) {
	t.Parallel()
	e := engine(t, "", nil, time.Now())
	secret := "decision := {\"allow\": \"do-not-log-me\" ==="
	if err := e.Reload(context.Background(), "package trustgate\n"+secret+"\n", nil); err == nil || !strings.Contains(err.Error(), "do-not-log-me") {
		// Then this test guards nothing: find what OPA's errors quote now.
		t.Fatalf("OPA's compile error no longer quotes the policy source (an OPA upgrade?): %v", err)
	}
	if err := e.LastError(); err == nil || strings.Contains(err.Error(), "do-not-log-me") {
		t.Fatalf("LastError %v", err)
	}
}

// writeFile replaces path atomically, so the watcher never sees it
// half-written.
func writeFile(t *testing.T, path, body string) {
	t.Helper()
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, path); err != nil {
		t.Fatal(err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting: %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestWatchReloadsFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	refPath := filepath.Join(dir, "ref.yaml")
	policyPath := filepath.Join(dir, "policy.rego")
	writeFile(t, refPath, "measurements: []\n")
	writeFile(t, policyPath, DefaultModule())
	e, err := New(context.Background(), Options{Module: DefaultModule(), ModuleName: policyPath})
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	var reported []error
	var logs syncBuffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		Watch(ctx, e, policyPath, refPath, 5*time.Millisecond, log, func(err error) {
			mu.Lock()
			reported = append(reported, err)
			mu.Unlock()
		})
	}()
	defer cancel()
	allowed := func() bool {
		d, err := e.Evaluate(ctx, claims(nil))
		return err == nil && d.Allow
	}

	// A newly approved measurement is accepted without a restart.
	writeFile(t, refPath, "measurements:\n  - value: \""+approved+"\"\n    label: b\n")
	waitFor(t, "new reference values", allowed)
	id := e.ID()

	// A broken policy is reported; the old one keeps serving.
	writeFile(t, policyPath, "package trustgate\ndecision := {\n")
	waitFor(t, "broken policy reported", func() bool { return e.LastError() != nil })
	if !allowed() || e.ID() != id {
		t.Fatal("the old policy was dropped")
	}
	mu.Lock()
	n := len(reported)
	mu.Unlock()
	if n == 0 {
		t.Fatal("onError not called")
	}

	// Broken reference values too.
	writeFile(t, policyPath, DefaultModule())
	waitFor(t, "policy fixed", func() bool { return e.LastError() == nil })
	writeFile(t, refPath, "measurements: [{value: nothex, label: x}]\n")
	waitFor(t, "broken reference values reported", func() bool { return e.LastError() != nil })
	if strings.Contains(e.LastError().Error(), "nothex") || !allowed() {
		t.Fatalf("LastError %v quotes the file, or the old values were dropped", e.LastError())
	}

	// A deleted file is an error, not an empty policy.
	writeFile(t, refPath, "measurements:\n  - value: \""+approved+"\"\n    label: c\n")
	waitFor(t, "reference values fixed", func() bool { return e.LastError() == nil })
	os.Remove(refPath)
	waitFor(t, "missing file reported", func() bool { return e.LastError() != nil })
	if d, err := e.Evaluate(ctx, claims(nil)); err != nil || d.Label != "c" {
		t.Fatalf("a missing file dropped the policy: %+v %v", d, err)
	}
	cancel()
	<-done
	for _, content := range []string{"nothex", "decision := {", approved} {
		if strings.Contains(logs.String(), content) {
			t.Errorf("the log quotes the files (%q):\n%s", content, logs.String())
		}
	}
}

// A failure is reported once, not again at every poll while the files
// stay the same; a change is applied only once it has stayed put for one
// poll. The polls are Watch's own, made one by one.
func TestWatchReportsAnUnchangedFailureOnce(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	refPath := filepath.Join(dir, "ref.yaml")
	policyPath := filepath.Join(dir, "policy.rego")
	writeFile(t, policyPath, DefaultModule())
	e, err := New(context.Background(), Options{Module: DefaultModule(), ModuleName: policyPath})
	if err != nil {
		t.Fatal(err)
	}
	var reported int
	w := &watcher{e: e, policyPath: policyPath, refPath: refPath, log: slog.New(slog.DiscardHandler),
		onError: []func(error){func(error) { reported++ }}}
	ctx := context.Background()
	poll := func(n int) {
		for range n {
			w.poll(ctx)
		}
	}

	// refPath is missing: seen on the first poll, reported on the second.
	poll(1)
	if reported != 0 || e.LastError() != nil {
		t.Fatalf("reported %d times after one poll, LastError %v", reported, e.LastError())
	}
	poll(1)
	if reported != 1 || e.LastError() == nil {
		t.Fatalf("reported %d times after two polls, LastError %v", reported, e.LastError())
	}
	poll(10)
	if reported != 1 {
		t.Fatalf("an unchanged failure was reported %d times in 12 polls", reported)
	}
	// A fix is applied once it has stayed put for one poll.
	writeFile(t, refPath, "measurements:\n  - value: \""+approved+"\"\n    label: d\n")
	poll(1)
	if e.LastError() == nil {
		t.Fatal("a change was applied on the poll that first saw it")
	}
	poll(1)
	if d, err := e.Evaluate(ctx, claims(nil)); e.LastError() != nil || reported != 1 || err != nil || d.Label != "d" {
		t.Fatalf("after the fix: LastError %v, reported %d times, decision %+v, %v", e.LastError(), reported, d, err)
	}
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

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// BenchmarkEvaluate measures the default policy on realistic claims with
// a staged rollout of three builds and a TCB floor.
func BenchmarkEvaluate(b *testing.B) {
	ref := set(func(s *refvalues.Set) {
		s.Measurements = append(s.Measurements,
			refvalues.Measurement{Value: next, Label: "build-2"},
			refvalues.Measurement{Value: strings.Repeat("43", 48), Label: "build-3"})
		s.MinTCB = &refvalues.TCB{Bootloader: 3, SNP: 8, Microcode: 115}
	})
	e := engine(b, "", ref, time.Now())
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
