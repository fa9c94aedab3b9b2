package main

import (
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/policy"
)

const trusteeMeasurement = "a1f3930413247bb38cfc171579ea3c12d5fe4901f0c792f63fd75d98f1ef827c23500644e0e692e6be917f9050d3d38c"

func refFile(t *testing.T, body string) string {
	t.Helper()
	return writeTemp(t, "ref.yaml", []byte(body))
}

// approvedRef approves the trustee report's measurement as trustee-ci.
func approvedRef(t *testing.T, extra string) string {
	t.Helper()
	return refFile(t, "measurements:\n  - value: \""+trusteeMeasurement+"\"\n    label: trustee-ci\n    resources: [db-password]\n"+extra)
}

// verify --policy/--data appraises a real report after verifying it.
func TestVerifyCLIWithPolicy(t *testing.T) {
	t.Parallel()
	base := []string{"verify", "--offline", "--no-revocation", td("trustee-report.bin"), "--vcek", td("trustee-vcek.der")}
	cases := []struct {
		name  string
		extra func(t *testing.T) []string
		code  int
		want  []string
	}{
		{"approved", func(t *testing.T) []string { return []string{"--data", approvedRef(t, "")} },
			exitOK, []string{"VERIFIED\n", "policy:            allow (label trustee-ci), resources: db-password", "measurement:       a1f3930413247bb3"}},
		{"approved, JSON reference values", func(t *testing.T) []string {
			return []string{"--data", writeTemp(t, "ref.json", []byte(`{"measurements": [{"value": "`+trusteeMeasurement+`", "label": "json-ci"}]}`))}
		}, exitOK, []string{"VERIFIED\n", "allow (label json-ci)"}},
		{"approved, at the TCB floor", func(t *testing.T) []string {
			return []string{"--data", approvedRef(t, "min_tcb: {bootloader: 3, tee: 0, snp: 8, microcode: 115}\n")}
		}, exitOK, []string{"VERIFIED\n"}},
		{"not approved", func(t *testing.T) []string {
			return []string{"--data", refFile(t, "measurements:\n  - value: \""+strings.Repeat("ab", 48)+"\"\n    label: other\n")}
		}, exitRejected, []string{"REJECTED: measurement_mismatch\n", "policy: deny (measurement_mismatch)"}},
		{"empty reference values", func(t *testing.T) []string { return []string{"--data", refFile(t, "")} },
			exitRejected, []string{"REJECTED: measurement_mismatch\n"}},
		{"min_tcb above the report", func(t *testing.T) []string {
			return []string{"--data", approvedRef(t, "min_tcb: {bootloader: 3, tee: 0, snp: 9, microcode: 0}\n")}
		}, exitRejected, []string{"REJECTED: tcb_below_minimum\n"}},
		{"vmpl not allowed", func(t *testing.T) []string { return []string{"--data", approvedRef(t, "allowed_vmpl: [1]\n")} },
			exitRejected, []string{"REJECTED: vmpl_not_allowed\n"}},
		{"custom policy, own reason", func(t *testing.T) []string {
			return []string{"--policy", writeTemp(t, "deny.rego", []byte("package trustgate\nreason_codes := {\"policy_region\"}\ndecision := {\"allow\": false, \"reasons\": [\"policy_region\"]}\n")), "--data", approvedRef(t, "")}
		}, exitRejected, []string{"REJECTED: policy_region\n"}},
		{"custom policy alone, undefined decision", func(t *testing.T) []string {
			return []string{"--policy", writeTemp(t, "undef.rego", []byte("package trustgate\nallow := true\n"))}
		}, exitRejected, []string{"REJECTED: policy_denied\n"}},
		{"policy that does not compile", func(t *testing.T) []string {
			return []string{"--policy", writeTemp(t, "bad.rego", []byte("package trustgate\ndecision := {"))}
		}, exitUsage, nil},
		{"policy using http.send", func(t *testing.T) []string {
			return []string{"--policy", writeTemp(t, "net.rego", []byte("package trustgate\ndecision := {\"allow\": http.send({\"method\": \"get\", \"url\": \"http://127.0.0.1:1\"}).status_code == 200}\n"))}
		}, exitUsage, nil},
		{"invalid reference values", func(t *testing.T) []string {
			return []string{"--data", refFile(t, "measurements: [{value: nothex, label: x}]\n")}
		},
			exitUsage, nil},
		{"missing reference values", func(t *testing.T) []string { return []string{"--data", filepath.Join(t.TempDir(), "none.yaml")} },
			exitUsage, nil},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(append(append([]string{}, base...), tc.extra(t)...)...)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.code, out, errOut)
			}
			for _, w := range tc.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
			if tc.code == exitRejected && !strings.HasPrefix(out, "REJECTED: ") {
				t.Errorf("verdict line not first:\n%s", out)
			}
		})
	}
}

// --json carries the policy's decision beside the verdict.
func TestVerifyCLIWithPolicyJSON(t *testing.T) {
	t.Parallel()
	type result struct {
		Verdict, Reason string
		Policy          *struct {
			Allow     bool
			Reasons   []string
			Label     string
			Resources []string
		}
		Claims *struct{ Measurement string }
	}
	base := []string{"verify", "--offline", "--no-revocation", "--json", td("trustee-report.bin"), "--vcek", td("trustee-vcek.der")}

	code, out, _ := runCLI(append(base, "--data", approvedRef(t, ""))...)
	var r result
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != exitOK || r.Verdict != "VERIFIED" || r.Policy == nil ||
		!r.Policy.Allow || r.Policy.Label != "trustee-ci" || len(r.Policy.Resources) != 1 || r.Claims == nil || r.Claims.Measurement != trusteeMeasurement {
		t.Fatalf("allow: exit %d %v\n%s", code, err, out)
	}

	code, out, _ = runCLI(append(base, "--data", approvedRef(t, "min_tcb: {bootloader: 4, tee: 0, snp: 0, microcode: 0}\n"))...)
	r = result{}
	if err := json.Unmarshal([]byte(out), &r); err != nil || code != exitRejected || r.Verdict != "REJECTED" || r.Reason != "tcb_below_minimum" ||
		r.Policy == nil || r.Policy.Allow || len(r.Policy.Reasons) != 1 || r.Claims != nil {
		t.Fatalf("deny: exit %d %v\n%s", code, err, out)
	}
}

func TestPolicyEvalCLI(t *testing.T) {
	t.Parallel()
	// Claims as verify --json prints them: the whole output, and its claims
	// object alone.
	code, verifyOut, _ := runCLI(atPinned([]string{"verify", "--offline", "--no-revocation", "--json", td("trustee-report.bin"), "--vcek", td("trustee-vcek.der")})...)
	if code != exitOK {
		t.Fatalf("verify: exit %d", code)
	}
	var v struct{ Claims json.RawMessage }
	if err := json.Unmarshal([]byte(verifyOut), &v); err != nil {
		t.Fatal(err)
	}
	claims := writeTemp(t, "claims.json", v.Claims)
	whole := writeTemp(t, "verify.json", []byte(verifyOut))
	debug := writeTemp(t, "debug.json", []byte(strings.Replace(string(v.Claims), `"debug": false`, `"debug": true`, 1)))
	approved := approvedRef(t, "")
	ownReason := writeTemp(t, "own.rego", []byte("package trustgate\nreason_codes := {\"policy_region\"}\ndecision := {\"allow\": false, \"reasons\": [\"policy_region\"]}\n"))
	undefined := writeTemp(t, "undef.rego", []byte("package trustgate\ndecision := 1 if false\n"))

	cases := []struct {
		name   string
		args   []string
		code   int
		allow  bool
		reason string
		label  string
	}{
		{"default policy, approved", []string{"--claims", claims, "--data", approved}, exitOK, true, "", "trustee-ci"},
		{"verify --json output as claims", []string{"--claims", whole, "--data", approved}, exitOK, true, "", "trustee-ci"},
		{"explicit default policy file", []string{"--claims", claims, "--data", approved, "--policy", writeTemp(t, "p.rego", []byte(policy.DefaultModule()))}, exitOK, true, "", "trustee-ci"},
		{"no reference values", []string{"--claims", claims}, exitRejected, false, "measurement_mismatch", ""},
		{"debug", []string{"--claims", debug, "--data", approved}, exitRejected, false, "debug_enabled", ""},
		{"own reason", []string{"--claims", claims, "--policy", ownReason}, exitRejected, false, "policy_region", ""},
		{"undefined decision", []string{"--claims", claims, "--policy", undefined}, exitRejected, false, "policy_denied", ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			code, out, errOut := runCLI(append([]string{"policy", "eval"}, tc.args...)...)
			var d struct {
				Allow   bool
				Reasons []string
				Label   string
				Reason  string
				ID      string `json:"appraisal_policy_id"`
			}
			if err := json.Unmarshal([]byte(out), &d); err != nil || code != tc.code {
				t.Fatalf("exit %d (want %d) %v\n%s%s", code, tc.code, err, out, errOut)
			}
			if d.Allow != tc.allow || d.Reason != tc.reason || d.Label != tc.label || !strings.HasPrefix(d.ID, "sha256:") {
				t.Fatalf("decision %+v\n%s", d, out)
			}
			if !tc.allow && (len(d.Reasons) == 0 || d.Reasons[0] != tc.reason) {
				t.Fatalf("reasons %q, want %q first", d.Reasons, tc.reason)
			}
		})
	}
}

func TestPolicyEvalCLIUsage(t *testing.T) {
	t.Parallel()
	claims := writeTemp(t, "claims.json", []byte(`{"measurement": "`+trusteeMeasurement+`", "vmpl": 0, "policy": {"debug": false}}`))
	cases := map[string][]string{
		"no subcommand":         {"policy"},
		"unknown subcommand":    {"policy", "check", "--claims", claims},
		"no claims":             {"policy", "eval"},
		"stray argument":        {"policy", "eval", "--claims", claims, "extra"},
		"unknown flag":          {"policy", "eval", "--claims", claims, "--input", claims},
		"missing claims file":   {"policy", "eval", "--claims", filepath.Join(t.TempDir(), "none.json")},
		"bad JSON":              {"policy", "eval", "--claims", writeTemp(t, "bad.json", []byte("{not json"))},
		"claims not an object":  {"policy", "eval", "--claims", writeTemp(t, "list.json", []byte("[1, 2]"))},
		"rejected verdict":      {"policy", "eval", "--claims", writeTemp(t, "rej.json", []byte(`{"verdict": "REJECTED", "reason": "signature_invalid"}`))},
		"policy not compiling":  {"policy", "eval", "--claims", claims, "--policy", writeTemp(t, "bad.rego", []byte("package x\n{"))},
		"missing policy file":   {"policy", "eval", "--claims", claims, "--policy", filepath.Join(t.TempDir(), "none.rego")},
		"bad reference values":  {"policy", "eval", "--claims", claims, "--data", writeTemp(t, "ref.yaml", []byte("min_tcb: {bootlader: 1}\n"))},
		"reference values type": {"policy", "eval", "--claims", claims, "--data", writeTemp(t, "ref.txt", []byte("{}"))},
	}
	for name, args := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			if code, out, errOut := runCLI(args...); code != exitUsage {
				t.Errorf("exit %d, want %d\n%s%s", code, exitUsage, out, errOut)
			}
		})
	}
	if code, _, _ := runCLI("policy", "--help"); code != exitOK {
		t.Errorf("policy --help: exit %d", code)
	}
}
