package refvalues

import (
	"strings"
	"testing"
	"time"
)

// Stamp raises the version by one and sets signed_at, keeping comments
// (YAML) and member order (JSON); a stamped set's digest differs from the
// unstamped one.
func TestStamp(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 8, 1, 2, 3, 456, time.UTC)
	val := strings.Repeat("ab", 48)
	for _, tc := range []struct {
		name string
		f    Format
		in   string
		keep string
	}{
		{"yaml, first", YAML, "# fleet A\nmeasurements:\n  - value: \"" + val + "\"\n    label: b1 # the first\n", "# the first"},
		{"yaml, again", YAML, "version: 41\nsigned_at: 2026-01-01T00:00:00Z\nmeasurements: []\n", "measurements: []"},
		{"json", JSON, `{"measurements":[{"value":"` + val + `","label":"b1"}],"allowed_vmpl":[0]}`, `"allowed_vmpl"`},
	} {
		before, err := Parse([]byte(tc.in), tc.f)
		if err != nil {
			t.Fatal(err)
		}
		out, s, err := Stamp([]byte(tc.in), tc.f, at)
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		if s.Version != before.Version+1 || s.SignedAt == nil || !s.SignedAt.Equal(at.Truncate(time.Second)) {
			t.Fatalf("%s: version %d signed_at %v", tc.name, s.Version, s.SignedAt)
		}
		if !strings.Contains(string(out), tc.keep) || len(s.Measurements) != len(before.Measurements) {
			t.Fatalf("%s: lost content:\n%s", tc.name, out)
		}
		if s.Digest() == before.Digest() {
			t.Fatalf("%s: same digest", tc.name)
		}
		again, s2, err := Stamp(out, tc.f, at)
		if err != nil || s2.Version != s.Version+1 || strings.Count(string(again), "version") != 1 {
			t.Fatalf("%s: second stamp: %v %d\n%s", tc.name, err, s2.Version, again)
		}
	}
	if _, _, err := Stamp([]byte("version: -3\n"), YAML, at); err == nil {
		t.Fatal("negative version stamped")
	}
}
