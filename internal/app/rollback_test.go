package app

import (
	"context"
	"errors"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/policy"
	"github.com/trustgate/trustgate/internal/refvalues"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/testkit"
)

// SPEC "The gatekeeper's configuration never goes back", the signed file
// (issue 18, item 3): an older FILE + FILE.sig pair, genuinely signed, is
// a rollback. The running replica keeps the newer set (the withdrawn
// build stays refused), says "degraded" naming the kind, counts
// kind="rollback"; a replica started on the old pair with an empty state
// directory but the fleet's Redis does not start (exit 2 in serve); a
// replica restarted on it with its state directory does not either; a
// newer signed file clears "degraded" by itself.
func TestOldSignedFileIsARollback(t *testing.T) {
	t.Parallel()
	rs := testkit.StartRedisServer(t)
	key, trust := writeTrustKeys(t)
	shared := sharedKeys(t, rs.Addr)
	stateA := filepath.Join(t.TempDir(), "state")
	var refPath string
	a := startServerAt(t, func(c *config.Config) {
		shared(c)
		c.RefvaluesTrustKey, c.StateDir, c.ReloadInterval = trust, stateA, 100*time.Millisecond
		refPath = c.ReferenceValues
		signStamped(t, key, refPath) // version 1: build-1 approved
	}, nil)
	oldFile, _ := os.ReadFile(refPath)
	oldSig, _ := os.ReadFile(refPath + refvalues.SigSuffix)
	if !strings.Contains(string(oldFile), "version: 1") {
		t.Fatalf("not stamped:\n%s", oldFile)
	}
	ctx := context.Background()
	g := newGuest(t, sim.Options{})
	attest := func(s *server) string {
		_, err := s.c.Attest(ctx, g.request(s.challenge(t), false))
		return reasonOf(err)
	}
	if r := attest(a); r != "" {
		t.Fatalf("version 1: %s", r)
	}

	// Version 2 withdraws build-1.
	writeFile(t, refPath, string(oldFile[:strings.Index(string(oldFile), "measurements:")])+"measurements: []\n")
	signStamped(t, key, refPath)
	waitFor(t, func() bool { return attest(a) == "measurement_mismatch" })

	// The old pair is put back: refused.
	writeFile(t, refPath, string(oldFile))
	writeFile(t, refPath+refvalues.SigSuffix, string(oldSig))
	var h v1.Health
	waitFor(t, func() bool {
		getJSON(t, a.url+v1.PathReadyz, http.StatusOK, &h)
		return h.Status == "degraded" && strings.Contains(h.Error, "rollback")
	})
	if !strings.Contains(h.Error, "rollback") || !strings.Contains(h.Error, "version 1 is older than version 2") {
		t.Fatalf("/readyz: %+v", h)
	}
	if r := attest(a); r != "measurement_mismatch" {
		t.Fatalf("after the old pair came back, the withdrawn build: %q", r)
	}
	_, metrics := rawGet(t, a.url+v1.PathMetrics)
	if !strings.Contains(metrics, `trustgate_config_reload_failures_total{file="reference_values",kind="rollback"} 1`) {
		t.Fatalf("not counted:\n%s", grepLines(metrics, "reload_failures"))
	}
	if !strings.Contains(a.logText(), "rollback") {
		t.Fatalf("not logged:\n%s", a.logText())
	}

	// A new replica on the old pair: the fleet (Redis) remembers.
	for name, dir := range map[string]string{"new replica, fleet's redis": filepath.Join(t.TempDir(), "state"), "restarted replica, own state": stateA} {
		cfg := config.Default()
		cfg.DevSimulator, cfg.Offline, cfg.CertCacheDir = true, true, t.TempDir()
		shared(&cfg)
		cfg.RefvaluesTrustKey, cfg.ReferenceValues, cfg.StateDir = trust, refPath, dir
		if name == "restarted replica, own state" {
			cfg.Redis = "" // its state directory alone remembers
		}
		app, err := New(ctx, cfg, Deps{})
		var fe *policy.FileError
		if err == nil {
			app.Close()
		}
		if !errors.As(err, &fe) || fe.Kind != policy.KindRollback {
			t.Fatalf("%s: %v, want a rollback", name, err)
		}
	}

	// A newer signed file (version 3, the current content fixed): in
	// force, "degraded" cleared without anything else.
	writeFile(t, refPath, string(oldFile))
	signStamped(t, key, refPath) // version 1 + 1 = 2 is taken: the file says 1
	signStamped(t, key, refPath) // 3
	waitFor(t, func() bool {
		getJSON(t, a.url+v1.PathReadyz, http.StatusOK, &h)
		return h.Status == "ok"
	})
	if r := attest(a); r != "" {
		t.Fatalf("version 3: %s", r)
	}
}
