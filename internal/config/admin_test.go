package config

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func TestAdminAndPolicySettings(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	file := filepath.Join(dir, "f")
	os.WriteFile(file, []byte("x"), 0o600)
	if d := Default(); d.PolicyTimeout != 2*time.Second || d.AdminListen != "" || d.PolicyURL != "" || d.RefvaluesTrustKey != "" {
		t.Fatalf("defaults: %+v", d)
	}
	cases := []struct {
		name string
		mut  func(*Config)
		want string // "" = valid
	}{
		{"admin with token", func(c *Config) { c.AdminListen, c.AdminTokenFile = "127.0.0.1:9090", file }, ""},
		{"admin with client CA", func(c *Config) {
			c.AdminListen, c.AdminClientCA, c.TLSCert, c.TLSKey = "127.0.0.1:9090", file, file, file
		}, ""},
		{"admin without credentials", func(c *Config) { c.AdminListen = "127.0.0.1:9090" }, "admin_listen needs"},
		{"admin on the API's address", func(c *Config) { c.AdminListen, c.AdminTokenFile = c.Listen, file }, "must not be the API's"},
		{"admin address without port", func(c *Config) { c.AdminListen, c.AdminTokenFile = "127.0.0.1", file }, "admin_listen"},
		{"admin client CA without TLS", func(c *Config) { c.AdminListen, c.AdminClientCA = "127.0.0.1:9090", file }, "admin_client_ca needs tls_cert"},
		{"missing token file", func(c *Config) { c.AdminListen, c.AdminTokenFile = "127.0.0.1:9090", filepath.Join(dir, "none") }, "admin_token_file"},
		{"missing trust key", func(c *Config) { c.RefvaluesTrustKey = filepath.Join(dir, "none") }, "refvalues_trust_key"},
		{"policy url", func(c *Config) { c.PolicyURL = "http://127.0.0.1:8181/v1/data/trustgate/decision" }, ""},
		{"policy url not http", func(c *Config) { c.PolicyURL = "unix:///run/opa.sock" }, "policy_url"},
		{"policy url localhost", func(c *Config) { c.PolicyURL = "http://localhost:8181/v1/data/trustgate/decision" }, ""},
		{"policy url ipv6 loopback", func(c *Config) { c.PolicyURL = "http://[::1]:8181/v1/data/trustgate/decision" }, ""},
		{"policy url https", func(c *Config) { c.PolicyURL = "https://opa.internal:8181/v1/data/trustgate/decision" }, ""},
		{"policy url https with CA", func(c *Config) {
			c.PolicyURL, c.PolicyCA = "https://opa.internal:8181/v1/data/trustgate/decision", file
		}, ""},
		{"policy url plain http off loopback", func(c *Config) { c.PolicyURL = "http://opa.internal:8181/v1/data/trustgate/decision" }, "not loopback"},
		{"policy url loopback-looking name", func(c *Config) { c.PolicyURL = "http://127.0.0.1.evil.example/v1/data/trustgate/decision" }, "not loopback"},
		{"policy url plain http, insecure_http", func(c *Config) {
			c.PolicyURL, c.InsecureHTTP = "http://opa.internal:8181/v1/data/trustgate/decision", true
		}, ""},
		{"policy ca with http", func(c *Config) {
			c.PolicyURL, c.PolicyCA = "http://127.0.0.1:8181/v1/data/trustgate/decision", file
		}, "policy_ca needs"},
		{"policy ca missing", func(c *Config) {
			c.PolicyURL, c.PolicyCA = "https://opa.internal:8181/v1/data/trustgate/decision", filepath.Join(dir, "none")
		}, "policy_ca"},
		{"policy url with reference values", func(c *Config) {
			c.PolicyURL, c.ReferenceValues = "http://127.0.0.1:8181/v1/data/trustgate/decision", file
		}, "policy_url excludes"},
		{"policy url with admin", func(c *Config) {
			c.PolicyURL, c.AdminListen, c.AdminTokenFile = "http://127.0.0.1:8181/v1/data/trustgate/decision", "127.0.0.1:9090", file
		}, "policy_url excludes"},
		{"policy reason codes", func(c *Config) {
			c.PolicyURL, c.PolicyReasonCodes = "http://127.0.0.1:8181/v1/data/trustgate/decision", "policy_tcb_status, policy_region"
		}, ""},
		{"policy reason codes without policy url", func(c *Config) { c.PolicyReasonCodes = "policy_tcb_status" }, "policy_reason_codes needs policy_url"},
		{"policy reason code malformed", func(c *Config) {
			c.PolicyURL, c.PolicyReasonCodes = "http://127.0.0.1:8181/v1/data/trustgate/decision", "policy_tcb_status,Policy_X"
		}, "policy_reason_codes"},
		{"policy timeout too short", func(c *Config) { c.PolicyTimeout = time.Millisecond }, "policy_timeout"},
		{"policy timeout too long", func(c *Config) { c.PolicyTimeout = time.Minute }, "policy_timeout"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			c := Default()
			tc.mut(&c)
			err := c.Validate()
			if tc.want == "" && err != nil {
				t.Fatalf("refused: %v", err)
			}
			if tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)) {
				t.Fatalf("error %v, want %q", err, tc.want)
			}
		})
	}
	// Every new setting is a flag and an environment variable too.
	c, err := Load("", []string{"TRUSTGATE_ADMIN_LISTEN=127.0.0.1:9", "TRUSTGATE_POLICY_TIMEOUT=3s", "TRUSTGATE_REFVALUES_TRUST_KEY=/k"})
	if err != nil || c.AdminListen != "127.0.0.1:9" || c.PolicyTimeout != 3*time.Second || c.RefvaluesTrustKey != "/k" {
		t.Fatalf("env: %+v %v", c, err)
	}
	for _, k := range []string{"admin-listen", "admin-token-file", "admin-client-ca", "refvalues-trust-key", "policy-url", "policy-timeout"} {
		if err := c.SetFlag(k, "1s"); err != nil {
			t.Errorf("flag %s: %v", k, err)
		}
	}
}
