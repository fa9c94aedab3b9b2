package main

import (
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// The CLI's conventions: every --help is on stdout with exit 0; a wrong
// flag is answered in two lines on stderr, with the closest flag and a
// pointer to --help (not the whole flag list); --version prints the
// version.
func TestCLIConventions(t *testing.T) {
	t.Parallel()
	helps := [][]string{{"--help"}, {"help"}, {"-h"}, {"serve", "--help"}, {"verify", "--help"}, {"demo", "--help"},
		{"policy", "--help"}, {"policy", "eval", "--help"}, {"certs", "--help"}, {"certs", "fetch", "--help"},
		{"certs", "import", "--help"}, {"measure", "--help"}, {"bench", "--help"}, {"refvalues", "--help"},
		{"refvalues", "sign", "--help"}, {"fleet", "--help"}, {"fleet", "lookup", "--help"}}
	for _, c := range commands() {
		helps = append(helps, []string{c.name, "--help"}) // a command added later too
	}
	for _, args := range helps {
		code, out, errOut := runCLI(args...)
		if code != exitOK || !strings.Contains(strings.ToLower(out), "usage") || !strings.Contains(out, "trustgate") || errOut != "" {
			t.Errorf("%q: exit %d, stdout %d bytes, stderr %q", args, code, len(out), errOut)
		}
	}
	code, out, _ := runCLI("--help")
	for _, want := range []string{"TDX quote", "policy default", "--version"} {
		if !strings.Contains(out, want) {
			t.Errorf("top-level help lacks %q:\n%s", want, out)
		}
	}
	if code, out, _ = runCLI("--version"); code != exitOK || !strings.HasPrefix(out, "trustgate ") || strings.Count(out, "\n") != 1 {
		t.Errorf("--version: exit %d, %q", code, out)
	}
	for _, c := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--listn", "127.0.0.1:1"}, "trustgate serve: unknown flag --listn (did you mean --listen?)\nRun 'trustgate serve --help' for usage.\n"},
		{[]string{"serve", "--nonce-ttl", "2 minutes"}, "trustgate serve: invalid configuration:\n--nonce-ttl: \"2 minutes\" is not a duration: want a duration such as 30s, 5m or 1h30m\n"},
		{[]string{"verify", "--vcke", "x", "r.bin"}, "trustgate verify: unknown flag --vcke (did you mean --vcek?)\nRun 'trustgate verify --help' for usage.\n"},
		{[]string{"demo", "--te", "tdx"}, "trustgate demo: unknown flag --te (did you mean --tee?)\nRun 'trustgate demo --help' for usage.\n"},
		{[]string{"verfy"}, "trustgate: unknown command \"verfy\" (did you mean verify?)\nRun 'trustgate --help' for usage.\n"},
	} {
		code, out, errOut := runCLI(c.args...)
		if code != exitUsage || out != "" || errOut != c.want {
			t.Errorf("%q: exit %d, stdout %q\nstderr %q\nwant   %q", c.args, code, out, errOut, c.want)
		}
	}
}

// serve --help is written for operators: grouped, each value's form
// named, no Go field or type names, and every config key in it.
func TestServeHelpForOperators(t *testing.T) {
	t.Parallel()
	_, out, _ := runCLI("serve", "--help")
	for _, want := range []string{"Listening and TLS:", "Shared store (replicas):", "--listen ADDR", "--nonce-ttl DURATION",
		"--tls-cert FILE", "--redis URL", "--resources DIR", "--dev-simulator\n", "(default 127.0.0.1:8080)", "--pprof-listen ADDR"} {
		if !strings.Contains(out, want) {
			t.Errorf("serve --help lacks %q", want)
		}
	}
	for _, goWord := range []string{"TLSCert", "ReferenceValues", "time.Duration", " value\n", "flagValue"} {
		if strings.Contains(out, goWord) {
			t.Errorf("serve --help speaks Go: %q", goWord)
		}
	}
}

// Invalid reference values at start are listed one by one, each where it
// is, as configuration problems are.
func TestServeListsReferenceValueProblems(t *testing.T) {
	t.Parallel()
	p := writeTemp(t, "ref.yaml", []byte("measurements:\n  - value: \"abc\"\n    label: b1\nallowed_vmpl: [7]\n"))
	code, _, errOut := runCLI("serve", "--reference-values", p, "--listen", "127.0.0.1:0")
	if code != exitUsage {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	for _, want := range []string{"trustgate serve: invalid reference values file (2 errors):\n",
		p + `: measurements[0] ("…"): value must be 96 lowercase hex characters`, p + ": allowed_vmpl[0]: 7 is not a VMPL"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
}

// When the VCEK cannot be had, verify says how to verify without network
// (--vcek FILE --offline), online and offline alike.
func TestVerifySaysHowToWorkOffline(t *testing.T) {
	t.Parallel()
	kds := httptest.NewServer(http.NotFoundHandler()) // a KDS that has nothing
	defer kds.Close()
	report := filepath.Join("..", "..", "testdata", "snp", "openanolis-trustee-turin-report.bin")
	for _, args := range [][]string{
		{"verify", report, "--kds-url", kds.URL, "--no-revocation"},
		{"verify", report, "--offline", "--no-revocation"},
	} {
		code, out, errOut := runCLI(args...)
		if code != exitUnavailable || !strings.HasPrefix(out, "REJECTED: vcek_unavailable") || !strings.Contains(errOut, "--vcek FILE") ||
			!strings.Contains(errOut, "trustgate certs import") {
			t.Errorf("%q: exit %d\n%s\n%s", args, code, out, errOut)
		}
	}
}
