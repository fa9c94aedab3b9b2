package deploy

import (
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/app/apptest"
)

// promtool returns the promtool binary: the test fails without it when
// TRUSTGATE_TEST_REQUIRE_PROMETHEUS is set (scripts/test installs
// prometheus, which brings promtool) and is skipped otherwise.
func promtool(t *testing.T) string {
	t.Helper()
	bin, err := exec.LookPath("promtool")
	if err != nil {
		if os.Getenv("TRUSTGATE_TEST_REQUIRE_PROMETHEUS") != "" {
			t.Fatal("promtool is not on PATH and TRUSTGATE_TEST_REQUIRE_PROMETHEUS is set")
		}
		t.Skip("promtool is not on PATH (scripts/test installs prometheus, which has it)")
	}
	return bin
}

// Every rule file is valid and every rule-test file beside them passes
// `promtool test rules`.
func TestAlertRules(t *testing.T) {
	t.Parallel()
	bin := promtool(t)
	rules, tests := ruleFiles(t)
	if len(rules) == 0 || len(tests) == 0 {
		t.Fatalf("rule files %v, tests %v", rules, tests)
	}
	for _, args := range [][]string{append([]string{"check", "rules"}, rules...), append([]string{"test", "rules"}, tests...)} {
		cmd := exec.Command(bin, args...)
		cmd.Dir = "prometheus"
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// ruleFiles lists deploy/prometheus/*.yml: rule files and their tests
// (*_test.yml), relative to deploy/prometheus.
func ruleFiles(t *testing.T) (rules, tests []string) {
	t.Helper()
	all, err := filepath.Glob(filepath.Join("prometheus", "*.yml"))
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range all {
		if strings.HasSuffix(f, "_test.yml") {
			tests = append(tests, filepath.Base(f))
		} else {
			rules = append(rules, filepath.Base(f))
		}
	}
	return rules, tests
}

var (
	seriesRE  = regexp.MustCompile(`\b(trustgate_[a-z_]+)(\{[^}]*\})?`)
	matcherRE = regexp.MustCompile(`([a-z_]+)\s*(?:=~|!~|!=|=)\s*"`)
)

// Every metric a rule uses exists on a real verifier's /metrics, with every
// label the rule matches on (job and instance come from Prometheus).
func TestAlertRulesUseExistingMetrics(t *testing.T) {
	t.Parallel()
	url := apptest.Start(t, apptest.SimVerifier(t, nil))
	resp, err := http.Get(url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	exposed := map[string]map[string]bool{} // name → label names
	for _, line := range strings.Split(string(b), "\n") {
		if line == "" || line[0] == '#' {
			continue
		}
		name, labels, _ := strings.Cut(strings.Fields(line)[0], "{")
		if exposed[name] == nil {
			exposed[name] = map[string]bool{}
		}
		for _, m := range regexp.MustCompile(`([a-z_]+)="`).FindAllStringSubmatch(labels, -1) {
			exposed[name][m[1]] = true
		}
	}
	rules, _ := ruleFiles(t)
	used := 0
	for _, f := range rules {
		src, err := os.ReadFile(filepath.Join("prometheus", f))
		if err != nil {
			t.Fatal(err)
		}
		var code []string // without comments
		for _, line := range strings.Split(string(src), "\n") {
			if !strings.HasPrefix(strings.TrimSpace(line), "#") {
				code = append(code, line)
			}
		}
		for _, m := range seriesRE.FindAllStringSubmatch(strings.Join(code, "\n"), -1) {
			used++
			labels, ok := exposed[m[1]]
			if !ok {
				t.Errorf("%s: %s is not a metric of the verifier", f, m[1])
				continue
			}
			for _, lm := range matcherRE.FindAllStringSubmatch(m[2], -1) {
				if l := lm[1]; l != "job" && l != "instance" && !labels[l] {
					t.Errorf("%s: %s has no label %s", f, m[1], l)
				}
			}
		}
	}
	if used < 8 {
		t.Errorf("only %d metric uses found in the rules", used)
	}
}
