package fetch

import (
	"net/http"
	"testing"
	"time"
)

// Both forms of Retry-After, capped at a day; a number too large for a
// Duration does not wrap around to a negative or short wait.
func TestParseRetryAfter(t *testing.T) {
	t.Parallel()
	now := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	for _, tc := range []struct {
		h    string
		want time.Duration
		ok   bool
	}{
		{"", 0, false},
		{"7", 7 * time.Second, true},
		{" 30 ", 30 * time.Second, true},
		{"-1", 0, false},
		{"soon", 0, false},
		{"172800", MaxRetryAfter, true},
		{"99999999999999999", MaxRetryAfter, true},
		{now.Add(90 * time.Second).Format(http.TimeFormat), 90 * time.Second, true},
		{now.Add(-time.Hour).Format(http.TimeFormat), 0, true},
		{now.AddDate(1, 0, 0).Format(http.TimeFormat), MaxRetryAfter, true},
	} {
		d, ok := ParseRetryAfter(tc.h, now)
		if d != tc.want || ok != tc.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", tc.h, d, ok, tc.want, tc.ok)
		}
	}
}
