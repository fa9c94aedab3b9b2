package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"
)

const trusteeMeasurement = "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c"

func refFile(t *testing.T, body string) string {
	return writeTemp(t, "ref.yaml", []byte(body))
}

// verify --policy/--data appraises a real report after verifying it.
func TestVerifyCLIWithPolicy(t *testing.T) {
	t.Parallel()
	approved := refFile(t, "measurements:\n  - value: \""+trusteeMeasurement+"\"\n    label: trustee-ci\n")
	other := refFile(t, "measurements:\n  - value: \""+strings.Repeat("ab", 48)+"\"\n    label: other\n")
	strict := refFile(t, "measurements:\n  - value: \""+trusteeMeasurement+"\"\n    label: trustee-ci\nmin_tcb: {bootloader: 3, tee: 0, snp: 9, microcode: 0}\n")
	denyAll := writeTemp(t, "deny.rego", []byte("package trustgate\ndecision := {\"allow\": false, \"reasons\": [\"policy_region\"]}\n"))
	base := []string{"verify", "--offline", td("trustee-report.bin"), "--vcek", td("trustee-vcek.der")}
	cases := []struct {
		extra []string
		code  int
		want  string
	}{
		{[]string{"--data", approved}, exitOK, "policy:            allow (label trustee-ci)"},
		{[]string{"--data", other}, exitRejected, "REJECTED: measurement_mismatch"},
		{[]string{"--data", strict}, exitRejected, "REJECTED: tcb_below_minimum"},
		{[]string{"--policy", denyAll, "--data", approved}, exitRejected, "REJECTED: policy_region"},
		{[]string{"--policy", writeTemp(t, "bad.rego", []byte("package trustgate\ndecision := {"))}, exitUsage, ""},
	}
	for _, c := range cases {
		code, out, errOut := runCLI(append(append([]string{}, base...), c.extra...)...)
		if code != c.code || !strings.Contains(out, c.want) {
			t.Errorf("%v: exit %d\n%s%s\nwant exit %d and %q", c.extra, code, out, errOut, c.code, c.want)
		}
	}
}

func TestPolicyEvalCLI(t *testing.T) {
	t.Parallel()
	// Claims as verify --json prints them.
	code, out, _ := runCLI("verify", "--offline", "--json", td("trustee-report.bin"), "--vcek", td("trustee-vcek.der"))
	if code != exitOK {
		t.Fatalf("verify: exit %d", code)
	}
	var v struct{ Claims json.RawMessage }
	if err := json.Unmarshal([]byte(out), &v); err != nil {
		t.Fatal(err)
	}
	claims := writeTemp(t, "claims.json", v.Claims)
	approved := refFile(t, "measurements:\n  - value: \""+trusteeMeasurement+"\"\n    label: trustee-ci\n")

	code, out, _ = runCLI("policy", "eval", "--claims", claims, "--data", approved)
	var d struct {
		Allow  bool
		Label  string
		Reason string
		ID     string `json:"appraisal_policy_id"`
	}
	if err := json.Unmarshal([]byte(out), &d); err != nil || code != exitOK || !d.Allow || d.Label != "trustee-ci" || !strings.HasPrefix(d.ID, "sha256:") {
		t.Fatalf("allow: exit %d %v\n%s", code, err, out)
	}
	code, out, _ = runCLI("policy", "eval", "--claims", claims)
	if err := json.Unmarshal([]byte(out), &d); err != nil || code != exitRejected || d.Allow || d.Reason != "measurement_mismatch" {
		t.Fatalf("deny: exit %d %v\n%s", code, err, out)
	}
	for _, args := range [][]string{
		{"policy"},
		{"policy", "eval"},
		{"policy", "eval", "--claims", filepath.Join(t.TempDir(), "none.json")},
		{"policy", "eval", "--claims", writeTemp(t, "bad.json", []byte("{not json"))},
		{"policy", "eval", "--claims", claims, "--policy", writeTemp(t, "bad.rego", []byte("package x\n{"))},
	} {
		if code, _, _ := runCLI(args...); code != exitUsage {
			t.Errorf("%q: exit %d, want %d", args, code, exitUsage)
		}
	}
}
