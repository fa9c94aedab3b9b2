package policy

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
)

// input.launch reaches the policy: the default policy ignores it (the
// same decision with and without it), a custom policy can refuse clones.
func TestLaunchInput(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	def := engine(t, "", set(nil), now)
	for _, l := range []*attest.Launch{nil, {Seq: 1}, {Seq: 7, FirstSeen: "2026-11-27T00:00:00Z", NewChip: true}} {
		d, err := def.Evaluate(context.Background(), claims(func(c *attest.Claims) { c.Launch = l }))
		if err != nil || !d.Allow {
			t.Fatalf("default policy with launch %+v: %+v %v", l, d, err)
		}
	}
	// Reasons only with a deny: an allow with reasons is ambiguous, a deny.
	e := engine(t, "package trustgate\n\nreason_codes := {\"policy_launch_on_new_chip\"}\n\ndecision := {\"allow\": true, \"label\": sprintf(\"seq-%d\", [input.launch.seq])} if input.launch.new_chip == false\n"+
		"decision := {\"allow\": false, \"reasons\": [\"policy_launch_on_new_chip\"]} if input.launch.new_chip\n", set(nil), now)
	d, err := e.Evaluate(context.Background(), claims(func(c *attest.Claims) { c.Launch = &attest.Launch{Seq: 3} }))
	if err != nil || !d.Allow || d.Label != "seq-3" {
		t.Fatalf("same chip: %+v %v", d, err)
	}
	d, _ = e.Evaluate(context.Background(), claims(func(c *attest.Claims) { c.Launch = &attest.Launch{Seq: 4, NewChip: true} }))
	if err := d.Err(); attest.ReasonOf(err) != "policy_launch_on_new_chip" {
		t.Fatalf("new chip: %+v, reason %q", d, attest.ReasonOf(err))
	}
}

// docs/launches.md's recipe: the default policy plus one failed rule refuses a
// launch attested from a second chip with policy_launch_on_new_chip.
func TestLaunchCloneRecipe(t *testing.T) {
	t.Parallel()
	mod := strings.Replace(strings.Replace(DefaultModule(), `"policy_tcb_status"]`, `"policy_tcb_status", "policy_launch_on_new_chip"]`, 1),
		`reason_codes := {"policy_tcb_status"}`, `reason_codes := {"policy_tcb_status", "policy_launch_on_new_chip"}`, 1) +
		"\nfailed contains \"policy_launch_on_new_chip\" if input.launch.new_chip\n"
	if mod == DefaultModule() {
		t.Fatal("recipe did not apply")
	}
	now := time.Date(2026, 11, 28, 0, 0, 0, 0, time.UTC)
	e := engine(t, mod, set(nil), now)
	for _, tc := range []struct {
		l    *attest.Launch
		want attest.Reason
	}{{nil, ""}, {&attest.Launch{Seq: 2}, ""}, {&attest.Launch{Seq: 2, NewChip: true}, "policy_launch_on_new_chip"}} {
		d, err := e.Evaluate(context.Background(), claims(func(c *attest.Claims) { c.Launch = tc.l }))
		if err != nil || attest.ReasonOf(d.Err()) != tc.want {
			t.Fatalf("launch %+v: %+v %v, want %q", tc.l, d, err, tc.want)
		}
	}
}

// Whether a policy may read input.launch: the default policy does not
// (the verifier then numbers a launch without reading its record first);
// one that names input.launch, or input as a whole or by a computed key,
// does.
func TestIgnoresLaunch(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		module string
		reads  bool
	}{
		{"", false},
		{DefaultModule(), false},
		{"package trustgate\n\ndecision := {\"allow\": input.vmpl == 0, \"reasons\": []}\n", false},
		{"package trustgate\n\ndecision := {\"allow\": input.launch.seq < 3, \"reasons\": []}\n", true},
		{"package trustgate\n\nimport input.launch as l\n\ndecision := {\"allow\": l.new_chip == false, \"reasons\": []}\n", true},
		{"package trustgate\n\ndecision := {\"allow\": count(input) > 0, \"reasons\": []}\n", true},
		{"package trustgate\n\nk := \"launch\"\n\ndecision := {\"allow\": input[k].seq > 0, \"reasons\": []}\n", true},
	} {
		e := engine(t, tc.module, set(nil), time.Now())
		if got := !e.IgnoresLaunch(); got != tc.reads {
			t.Errorf("module %q: reads input.launch %v, want %v", tc.module, got, tc.reads)
		}
	}
}
