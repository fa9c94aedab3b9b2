package config

import (
	"log/slog"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func TestDefaultsValid(t *testing.T) {
	t.Parallel()
	if err := Default().Validate(); err != nil {
		t.Fatal(err)
	}
}

func TestLoadPrecedence(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte("listen: 127.0.0.1:9000\nnonce_ttl: 30s\noffline: true\n"), 0o600)
	c, err := Load(p, []string{"TRUSTGATE_NONCE_TTL=45s", "OTHER=1"})
	if err != nil {
		t.Fatal(err)
	}
	if c.Listen != "127.0.0.1:9000" || c.NonceTTL != 45*time.Second || !c.Offline || c.TokenLifetime != 60*time.Second {
		t.Fatalf("%+v", c)
	}
	if err := c.SetFlag("nonce-ttl", "50s"); err != nil || c.NonceTTL != 50*time.Second {
		t.Fatalf("flag: %v %v", err, c.NonceTTL)
	}
}

func TestLoadRejectsUnknownKeys(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte("listen: 127.0.0.1:9000\nlisten_addr: x\n"), 0o600)
	if _, err := Load(p, nil); err == nil {
		t.Fatal("unknown key accepted")
	}
	if _, err := Load("", []string{"TRUSTGATE_NONCE_TTL=soon"}); err == nil {
		t.Fatal("bad env value accepted")
	}
}

// Every problem is reported at once.
func TestValidateListsEveryProblem(t *testing.T) {
	t.Parallel()
	c := Default()
	c.Listen = "0.0.0.0:8080"
	c.DevSimulator = true
	c.NonceTTL = time.Second
	c.TokenLifetime = 2 * time.Hour
	c.Policy = "/nonexistent/policy.rego"
	err := c.Validate()
	if err == nil {
		t.Fatal("accepted")
	}
	for _, want := range []string{"dev_simulator", "nonce_ttl", "token_lifetime", "policy"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error lacks %s: %v", want, err)
		}
	}
}

// shutdown_delay defaults to 5 s, takes 0 (no delay) from a flag, and
// refuses a negative or absurd value.
func TestShutdownDelay(t *testing.T) {
	t.Parallel()
	c := Default()
	if c.ShutdownDelay != 5*time.Second {
		t.Fatalf("default shutdown_delay %v, want 5s", c.ShutdownDelay)
	}
	if err := c.SetFlag("shutdown-delay", "0s"); err != nil || c.ShutdownDelay != 0 || c.Validate() != nil {
		t.Fatalf("--shutdown-delay 0s: %v %v %v", err, c.ShutdownDelay, c.Validate())
	}
	for _, v := range []string{"-1s", "6m"} {
		c.SetFlag("shutdown-delay", v)
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "shutdown_delay") {
			t.Errorf("shutdown_delay %s: %v", v, err)
		}
	}
}

// kds_url is checked by Validate with the rule certs.New applies, offline
// or not: validation happens once, here, and a configuration that passes
// is never refused later by the certificate service.
func TestValidateKDSURL(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		url     string
		offline bool
		ok      bool
	}{
		{"https://kdsintf.amd.com", false, true},
		{"http://127.0.0.1:8080", true, true},
		{"ftp://kds.example", false, false},
		{"https://", false, false},
		{"kdsintf.amd.com", true, false},
		{"https://kds example", true, false},
	} {
		c := Default()
		c.KDSURL, c.Offline = tc.url, tc.offline
		err := c.Validate()
		if (err == nil) != tc.ok || (err != nil && !strings.Contains(err.Error(), "kds_url")) {
			t.Errorf("kds_url %q offline %t: %v", tc.url, tc.offline, err)
		}
	}
}

// Keys lists every field of Config with its YAML key and the first
// sentence of its doc comment, and Default's value as the default.
func TestKeys(t *testing.T) {
	t.Parallel()
	keys := Keys()
	if n := reflect.TypeFor[Config]().NumField(); len(keys) != n {
		t.Fatalf("%d keys for %d fields", len(keys), n)
	}
	byName := map[string]Key{}
	for _, k := range keys {
		if k.Name == "" || k.Usage == "" {
			t.Errorf("key %+v: no name or usage", k)
		}
		byName[k.Name] = k
	}
	for name, want := range map[string]Key{
		"listen":  {Name: "listen", Usage: "Listen is the address the API listens on.", Default: "127.0.0.1:8080"},
		"tls_key": {Name: "tls_key", Usage: "TLSCert and TLSKey are the server's certificate (chain) and key, PEM; both or neither."},
		"offline": {Name: "offline", Usage: byName["offline"].Usage, Bool: true},
		"kds_rate": {Name: "kds_rate", Usage: "KDSRate is the least time between two KDS requests of one kind (VCEKs; CRLs and chains).",
			Default: "10s"},
	} {
		if got := byName[name]; got != want {
			t.Errorf("key %s: %+v, want %+v", name, got, want)
		}
	}
	if k := byName["dev_simulator"]; k.Flag() != "dev-simulator" {
		t.Errorf("flag %q", k.Flag())
	}
}

// log_level (issue 21, item 20) is a key and so a flag of serve: debug,
// info, warn or error, default info.
func TestLogLevel(t *testing.T) {
	t.Parallel()
	if lv, ok := (&Config{LogLevel: Default().LogLevel}).SlogLevel(); !ok || lv != slog.LevelInfo {
		t.Errorf("default log level %v %t", lv, ok)
	}
	for v, want := range map[string]slog.Level{"debug": slog.LevelDebug, "warn": slog.LevelWarn, "error": slog.LevelError} {
		c := Default()
		if err := c.SetFlag("log_level", v); err != nil {
			t.Fatal(err)
		}
		if lv, ok := c.SlogLevel(); !ok || lv != want || c.Validate() != nil {
			t.Errorf("%s: %v %t %v", v, lv, ok, c.Validate())
		}
	}
	c := Default()
	c.LogLevel = "verbose"
	if err := c.Validate(); err == nil || !strings.Contains(err.Error(), "log_level") {
		t.Errorf("log_level verbose: %v", err)
	}
	found := false
	for _, k := range Keys() {
		found = found || k.Flag() == "log-level"
	}
	if !found {
		t.Error("no --log-level flag")
	}
}

// dev_simulator is switched on by the flag only (issue 21, item 12): the
// environment or a config file that sets it is an error.
func TestDevSimulatorFlagOnly(t *testing.T) {
	t.Parallel()
	if _, err := Load("", []string{"TRUSTGATE_DEV_SIMULATOR=true"}); err == nil {
		t.Error("TRUSTGATE_DEV_SIMULATOR switched dev_simulator on")
	}
	p := filepath.Join(t.TempDir(), "c.yaml")
	if err := os.WriteFile(p, []byte("dev_simulator: true\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := Load(p, nil); err == nil {
		t.Error("a config file switched dev_simulator on")
	}
	c := Default()
	if err := c.SetFlag("dev-simulator", "true"); err != nil || !c.DevSimulator {
		t.Errorf("the flag: %v", err)
	}
}
