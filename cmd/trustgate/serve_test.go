package main

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"flag"
	"net"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/testkit"
)

// Every config key is also a serve flag (SPEC: "every flag is also a
// config key"), and every flag a key.
func TestServeFlagsCoverConfig(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	serveFlags(fs)
	flags := map[string]*flag.Flag{}
	fs.VisitAll(func(f *flag.Flag) { flags[strings.ReplaceAll(f.Name, "-", "_")] = f })
	rt := reflect.TypeFor[config.Config]()
	def := reflect.ValueOf(config.Default())
	for i := range rt.NumField() {
		key := rt.Field(i).Tag.Get("yaml")
		f := flags[key]
		if f == nil {
			t.Errorf("config key %s has no serve flag", key)
			continue
		}
		delete(flags, key)
		if len(f.Usage) < 20 {
			t.Errorf("--%s: usage %q; the field's doc comment should say what the key is", f.Name, f.Usage)
		}
		// The flag's default is Default's: set the flag to it and nothing changes.
		c := config.Default()
		if f.DefValue != "" {
			if err := c.SetFlag(f.Name, f.DefValue); err != nil {
				t.Errorf("--%s default %q: %v", f.Name, f.DefValue, err)
			}
		}
		if !reflect.DeepEqual(reflect.ValueOf(c).Field(i).Interface(), def.Field(i).Interface()) {
			t.Errorf("--%s: default %q is not Default()'s", f.Name, f.DefValue)
		}
		if b, ok := f.Value.(interface{ IsBoolFlag() bool }); (rt.Field(i).Type.Kind() == reflect.Bool) != (ok && b.IsBoolFlag()) {
			t.Errorf("--%s: a bool key must be a bool flag, and only a bool key", f.Name)
		}
	}
	delete(flags, "config")
	for f := range flags {
		t.Errorf("serve flag for %s has no config key", f)
	}
}

// A bool flag may be given bare, and every flag overrides the file.
func TestServeFlagsApply(t *testing.T) {
	t.Parallel()
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	set := serveFlags(fs)
	if err := fs.Parse([]string{"--offline", "--kds-rate", "20s", "--crl-grace", "0s"}); err != nil {
		t.Fatal(err)
	}
	c := config.Default()
	fs.Visit(func(f *flag.Flag) {
		if err := c.SetFlag(f.Name, *set[f.Name]); err != nil {
			t.Errorf("--%s: %v", f.Name, err)
		}
	})
	if !c.Offline || c.KDSRate != 20*time.Second || c.CRLGrace != 0 {
		t.Fatalf("offline %t, kds_rate %v, crl_grace %v", c.Offline, c.KDSRate, c.CRLGrace)
	}
}

// Bad settings stop serve before it listens, every problem listed at once.
func TestServeRefusesBadConfig(t *testing.T) {
	t.Parallel()
	code, _, errOut := runCLI("serve", "--listen", "0.0.0.0:0", "--dev-simulator", "--nonce-ttl", "1s", "--policy", "/nonexistent.rego",
		"--redis", "http://user:hunter2@example.invalid", "--warm-chips", "/nonexistent.txt", "--kds-rate", "0s")
	if code != exitUsage {
		t.Fatalf("exit %d, want %d\n%s", code, exitUsage, errOut)
	}
	if strings.Contains(errOut, "hunter2") {
		t.Errorf("a Redis password is echoed:\n%s", errOut)
	}
	for _, want := range []string{"dev_simulator is refused unless listen is a loopback address", "nonce_ttl", "policy", "redis:", "warm_chips", "kds_rate"} {
		if !strings.Contains(errOut, want) {
			t.Errorf("stderr lacks %q:\n%s", want, errOut)
		}
	}
	// SPEC "The gatekeeper's configuration never goes back": plain HTTP
	// to a policy engine off loopback is exit 2 unless --insecure-http.
	if code, _, errOut := runCLI("serve", "--policy-url", "http://opa.example:8181/v1/data/trustgate/decision"); code != exitUsage || !strings.Contains(errOut, "not loopback") {
		t.Fatalf("plain http policy_url: exit %d\n%s", code, errOut)
	}
	if code, _, errOut := runCLI("serve", "--nonce-ttl", "soon"); code != exitUsage || !strings.Contains(errOut, "--nonce-ttl") {
		t.Fatalf("bad duration: exit %d\n%s", code, errOut)
	}
}

// A key file readable or writable by group or others stops serve before it
// listens: exit 2 and one line naming the file, its mode and the fix.
func TestServeRefusesOpenKeyFiles(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	nonceKey := writeTemp(t, "nonce.key", []byte(strings.Repeat("ab", 32)))
	tokenKey := filepath.Join(dir, "token.pem")
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalECPrivateKey(k)
	if err := os.WriteFile(tokenKey, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	openNonce := writeTemp(t, "nonce-open.key", []byte(strings.Repeat("ab", 32)))
	os.Chmod(openNonce, 0o644)
	openToken := filepath.Join(dir, "token-open.pem")
	b, _ := os.ReadFile(tokenKey)
	os.WriteFile(openToken, b, 0o600)
	os.Chmod(openToken, 0o640)
	// serve listens on a port already taken, so that a key file accepted
	// ends it with exit 3 rather than serving.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	pki := testkit.NewPKI(t)
	openTLSKey := filepath.Join(dir, "tls-open.key")
	b, _ = os.ReadFile(pki.ServerKey)
	os.WriteFile(openTLSKey, b, 0o600)
	os.Chmod(openTLSKey, 0o644)
	cases := []struct {
		name, nonce, token, tlsKey, key, path, mode string
	}{
		{"nonce key 0644", openNonce, tokenKey, pki.ServerKey, "nonce_key_file", openNonce, "0644"},
		{"token key 0640", nonceKey, openToken, pki.ServerKey, "token_key_file", openToken, "0640"},
		{"TLS key 0644", nonceKey, tokenKey, openTLSKey, "tls_key", openTLSKey, "0644"},
	}
	for _, c := range cases {
		code, _, errOut := runCLI("serve", "--listen", ln.Addr().String(), "--offline", "--cert-cache-dir", t.TempDir(),
			"--nonce-key-file", c.nonce, "--token-key-file", c.token, "--tls-cert", pki.ServerCert, "--tls-key", c.tlsKey)
		lines := strings.Split(strings.TrimSpace(errOut), "\n")
		if code != exitUsage || len(lines) != 1 {
			t.Errorf("%s: exit %d, %d lines, want exit %d and one line:\n%s", c.name, code, len(lines), exitUsage, errOut)
			continue
		}
		for _, want := range []string{c.key, c.path + " has mode " + c.mode, "chmod 600 " + c.path} {
			if !strings.Contains(lines[0], want) {
				t.Errorf("%s: %q lacks %q", c.name, lines[0], want)
			}
		}
	}
	// The same files, owner-only, pass this check (serve then fails to
	// listen: exit 3, not 2).
	if code, _, errOut := runCLI("serve", "--listen", ln.Addr().String(), "--offline", "--cert-cache-dir", t.TempDir(),
		"--nonce-key-file", nonceKey, "--token-key-file", tokenKey, "--tls-cert", pki.ServerCert, "--tls-key", pki.ServerKey); code != exitUnavailable {
		t.Errorf("owner-only key files: exit %d, want %d (address in use)\n%s", code, exitUnavailable, errOut)
	}
}
