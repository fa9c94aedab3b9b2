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
		"listen":  {Name: "listen", Usage: "the address the API listens on.", Default: "127.0.0.1:8080"},
		"tls_key": {Name: "tls_key", Usage: "the server's certificate (chain) and key, PEM; both or neither."},
		"offline": {Name: "offline", Usage: byName["offline"].Usage, Bool: true},
		"kds_rate": {Name: "kds_rate", Usage: "the least time between two KDS requests of one kind (VCEKs; CRLs and chains).",
			Default: "10s", Duration: true},
	} {
		if got := byName[name]; got != want {
			t.Errorf("key %s: %+v, want %+v", name, got, want)
		}
	}
	// Written for operators: keys, not Go field names.
	for _, k := range keys {
		for _, goName := range []string{"TLSCert", "Listen ", "AdminTokenFile", "ClientCA", "ReferenceValues", "ShutdownDelay"} {
			if strings.Contains(k.Usage, goName) {
				t.Errorf("key %s: usage %q names the Go field %s", k.Name, k.Usage, goName)
			}
		}
	}
	if got := byName["dev_simulator"].Usage; !strings.Contains(got, "unless listen is a loopback address") {
		t.Errorf("dev_simulator: %q", got)
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

// A config file's mistakes are told in the operator's terms, all at once:
// file and line, the key, the closest known key for a misspelt one, the
// form a value takes. Nothing of Go's types shows.
func TestLoadErrorsNameKeyAndForm(t *testing.T) {
	t.Parallel()
	p := filepath.Join(t.TempDir(), "c.yaml")
	os.WriteFile(p, []byte("listen: 127.0.0.1:9000\nnonce-ttl: 30s\ntoken_lifetime: 2 minutes\noffline: maybe\n"+
		"reload_interval: [1s]\nlisten: 127.0.0.1:9001\nzzzz: 1\nstore_timeout:\n"), 0o600)
	_, err := Load(p, nil)
	if err == nil {
		t.Fatal("accepted")
	}
	msg := err.Error()
	for _, want := range []string{
		p + `:2: unknown key "nonce-ttl" (did you mean nonce_ttl?)`,
		p + `:3: token_lifetime: "2 minutes" is not a duration: want a duration such as 30s, 5m or 1h30m`,
		p + `:4: offline: "maybe" is not true or false`,
		p + `:5: reload_interval: want one value, not a list or mapping: want a duration`,
		p + `:6: listen given twice (also at line 1)`,
		p + `:7: unknown key "zzzz"` + "\n",
		p + `:8: store_timeout: no value: want a duration`,
	} {
		if !strings.Contains(msg+"\n", want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
	for _, go_ := range []string{"time.Duration", "config.Config", "!!str", "unmarshal"} {
		if strings.Contains(msg, go_) {
			t.Errorf("error speaks Go (%q):\n%s", go_, msg)
		}
	}
	// The same words for a flag and an environment variable.
	c := Default()
	if err := c.SetFlag("nonce-tll", "30s"); err == nil || !strings.Contains(err.Error(), "did you mean nonce_ttl?") {
		t.Errorf("SetFlag of a misspelt key: %v", err)
	}
	if _, err := Load("", []string{"TRUSTGATE_NONCE_TTL=2 minutes"}); err == nil ||
		err.Error() != `TRUSTGATE_NONCE_TTL: "2 minutes" is not a duration: want a duration such as 30s, 5m or 1h30m` {
		t.Errorf("environment: %v", err)
	}
	// An empty file, or one of comments only, is no configuration.
	os.WriteFile(p, []byte("# nothing yet\n"), 0o600)
	if c, err := Load(p, nil); err != nil || c.Listen != Default().Listen {
		t.Errorf("empty file: %v", err)
	}
}
