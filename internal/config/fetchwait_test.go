package config

import (
	"testing"
	"time"
)

// cert_fetch_wait defaults to 10 s, is set by env and flag, and must lie
// inside the server's 30 s write timeout.
func TestCertFetchWait(t *testing.T) {
	t.Parallel()
	c, err := Load("", []string{"TRUSTGATE_CERT_FETCH_WAIT=3s"})
	if err != nil || c.CertFetchWait != 3*time.Second {
		t.Fatalf("env: %v, %v", c.CertFetchWait, err)
	}
	if Default().CertFetchWait != 10*time.Second {
		t.Fatalf("default %v", Default().CertFetchWait)
	}
	for _, v := range []string{"0s", "-1s", "26s"} {
		c := Default()
		if err := c.SetFlag("cert-fetch-wait", v); err != nil {
			t.Fatal(err)
		}
		if c.Validate() == nil {
			t.Errorf("cert_fetch_wait %s accepted", v)
		}
	}
}
