package metrics

import (
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/launch"
)

// Launch anomalies are exposed at 0 from the start, count only known
// kinds, and committed sequence numbers feed trustgate_launch_seq.
func TestLaunchMetrics(t *testing.T) {
	t.Parallel()
	m := New(func() string { return "sha256:abc" })
	if out := scrape(t, m); !strings.Contains(out, `trustgate_launch_anomalies_total{kind="launch_on_new_chip"} 0`) {
		t.Fatal("anomalies not pre-initialised")
	}
	m.LaunchAnomaly(launch.AnomalyNewChip)
	m.LaunchAnomaly("something_else")
	m.LaunchCommitted(1)
	m.LaunchCommitted(4)
	out := scrape(t, m)
	for _, want := range []string{
		`trustgate_launch_anomalies_total{kind="launch_on_new_chip"} 1`,
		`trustgate_launch_seq_bucket{le="1"} 1`,
		`trustgate_launch_seq_bucket{le="5"} 2`,
		`trustgate_launch_seq_count 2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
	if strings.Contains(out, "something_else") {
		t.Error("an unknown kind became a label value")
	}
}

// The age of each VCEK served feeds trustgate_cert_cache_age_seconds.
func TestCertCacheAge(t *testing.T) {
	t.Parallel()
	m := New(func() string { return "sha256:abc" })
	m.CacheAge(2 * time.Hour)
	m.CacheAge(10 * 24 * time.Hour)
	out := scrape(t, m)
	for _, want := range []string{
		`trustgate_cert_cache_age_seconds_bucket{le="3600"} 0`,
		`trustgate_cert_cache_age_seconds_bucket{le="21600"} 1`,
		`trustgate_cert_cache_age_seconds_count 2`,
	} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %s", want)
		}
	}
}
