package config

import (
	"strings"
	"testing"
	"time"
)

// launch_retention defaults to 24 h and is refused outside 1m..90 days;
// launch_key_file may name a file that does not exist yet (it is created
// at start).
func TestLaunchSettings(t *testing.T) {
	t.Parallel()
	c, err := Load("", []string{"TRUSTGATE_LAUNCH_RETENTION=2h", "TRUSTGATE_LAUNCH_KEY_FILE=" + t.TempDir() + "/absent.key"})
	if err != nil {
		t.Fatal(err)
	}
	if Default().LaunchRetention != 24*time.Hour || c.LaunchRetention != 2*time.Hour || c.Validate() != nil {
		t.Fatalf("default %v, from env %v, validate %v", Default().LaunchRetention, c.LaunchRetention, c.Validate())
	}
	if err := c.SetFlag("launch-retention", "48h"); err != nil || c.LaunchRetention != 48*time.Hour {
		t.Fatalf("flag: %v %v", err, c.LaunchRetention)
	}
	for _, v := range []string{"0s", "30s", "2161h"} {
		c.SetFlag("launch-retention", v)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "launch_retention") {
			t.Errorf("launch_retention %s: %v", v, err)
		}
	}
}
