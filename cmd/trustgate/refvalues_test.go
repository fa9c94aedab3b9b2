package main

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/policy"
	"github.com/trustgate/trustgate/internal/refvalues"
)

func runCmd(f func([]string, *bytes.Buffer, *bytes.Buffer) int, args ...string) (int, string, string) {
	var stdout, stderr bytes.Buffer
	code := f(args, &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

func refvaluesCmd(args []string, o, e *bytes.Buffer) int { return cmdRefvalues(args, o, e) }
func measureCmd(args []string, o, e *bytes.Buffer) int   { return cmdMeasure(args, o, e) }
func policyCmd(args []string, o, e *bytes.Buffer) int    { return cmdPolicy(args, o, e) }

// signingKeys writes a P-256 key pair as CI would hold it: the private
// key PKCS #8, owner-only; the public key PKIX.
func signingKeys(t *testing.T) (key, pub string) {
	t.Helper()
	dir := t.TempDir()
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(k)
	key = filepath.Join(dir, "refvalues.key")
	os.WriteFile(key, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600)
	pd, _ := x509.MarshalPKIXPublicKey(&k.PublicKey)
	pub = filepath.Join(dir, "refvalues.pub")
	os.WriteFile(pub, pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pd}), 0o644)
	return key, pub
}

// The CI flow: measure a build, append it and sign the file in one step;
// the signature verifies as the verifier will check it, and any change to
// the file breaks it until the file is signed again.
func TestRefvaluesSignFlow(t *testing.T) {
	t.Parallel()
	key, pub := signingKeys(t)
	rv := filepath.Join(t.TempDir(), "refvalues.yaml")
	os.WriteFile(rv, []byte("measurements: []\n"), 0o644)
	measureArgs := []string{"--vcpus", "1", "--vcpu-type", "EPYC-v4", "--ovmf", fixture("ovmf_AmdSev_suffix.bin"), "--guest-features", "0x21",
		"--reference-values", rv, "--label", "build-2"}

	if code, _, errOut := runCmd(measureCmd, append(measureArgs, "--sign-key", key)...); code != 0 || !strings.Contains(errOut, "signed") {
		t.Fatalf("measure --sign-key: %d %s", code, errOut)
	}
	if code, out, errOut := runCmd(refvaluesCmd, "verify", "--trust-key", pub, rv); code != 0 || !strings.Contains(out, "signature valid, version 1") {
		t.Fatalf("verify: %d %s %s", code, out, errOut)
	}
	trust, _ := refvalues.ReadTrustKey(pub)
	if s, err := policy.LoadSignedReference(rv, trust); err != nil || len(s.Measurements) != 1 || s.Measurements[0].Label != "build-2" {
		t.Fatalf("the verifier's load: %v", err)
	}

	// Appended without signing: the old signature no longer holds.
	if code, _, errOut := runCmd(measureCmd, append(measureArgs[:len(measureArgs)-1], "build-3")...); code != 0 {
		t.Fatalf("measure: %d %s", code, errOut)
	}
	if code, _, errOut := runCmd(refvaluesCmd, "verify", "--trust-key", pub, rv); code != 1 || !strings.Contains(errOut, "signature_invalid") {
		t.Fatalf("verify after an unsigned change: %d %s", code, errOut)
	}
	if code, _, errOut := runCmd(refvaluesCmd, "sign", "--key", key, rv); code != 0 || !strings.Contains(errOut, rv+".sig") {
		t.Fatalf("sign: %d %s", code, errOut)
	}
	// Signing stamps the next version (covered by the signature): no
	// operator types it.
	if code, out, _ := runCmd(refvaluesCmd, "verify", "--trust-key", pub, rv); code != 0 || !strings.Contains(out, "version 2") {
		t.Fatalf("verify after signing again: %s", out)
	}
	if s, err := policy.LoadSignedReference(rv, trust); err != nil || s.Version != 2 || s.SignedAt == nil || len(s.Measurements) != 2 {
		t.Fatalf("the stamped file: %+v %v", s, err)
	}
	sig, _ := os.ReadFile(rv + ".sig")
	if parts := strings.Split(strings.TrimSpace(string(sig)), "."); len(parts) != 3 || parts[1] != "" {
		t.Fatalf("FILE.sig is not a detached compact JWS: %s", sig)
	}
}

func TestRefvaluesSignEntryAndUsage(t *testing.T) {
	t.Parallel()
	key, pub := signingKeys(t)
	dir := t.TempDir()
	entry := filepath.Join(dir, "entry.json")
	os.WriteFile(entry, []byte(`{"value":"`+strings.Repeat("ab", 48)+`","label":"build-9","resources":["db"]}`), 0o644)
	code, out, errOut := runCmd(refvaluesCmd, "sign", "--key", key, "--entry", entry)
	if code != 0 {
		t.Fatalf("sign --entry: %d %s", code, errOut)
	}
	trust, _ := refvalues.ReadTrustKey(pub)
	if m, err := refvalues.VerifyEntry(trust, out); err != nil || m.Label != "build-9" {
		t.Fatalf("the printed JWS: %v", err)
	}

	open := filepath.Join(dir, "open.key")
	b, _ := os.ReadFile(key)
	os.WriteFile(open, b, 0o644)
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("measurements: [{value: nothex, label: x}]\n"), 0o644)
	for name, args := range map[string][]string{
		"no subcommand":         {},
		"unknown subcommand":    {"frobnicate"},
		"sign without key":      {"sign", bad},
		"key open to others":    {"sign", "--key", open, entry},
		"invalid file":          {"sign", "--key", key, bad},
		"entry and file":        {"sign", "--key", key, "--entry", entry, bad},
		"verify without key":    {"verify", bad},
		"unknown extension":     {"sign", "--key", key, entry + ".txt"},
		"missing file":          {"sign", "--key", key, filepath.Join(dir, "none.yaml")},
		"invalid entry to sign": {"sign", "--key", key, "--entry", bad},
	} {
		if code, _, _ := runCmd(refvaluesCmd, args...); code != exitUsage {
			t.Errorf("%s: exit %d, want %d", name, code, exitUsage)
		}
	}
	if _, err := os.Stat(bad + ".sig"); err == nil {
		t.Error("an invalid file was signed")
	}
	if code, _, _ := runCmd(measureCmd, "--ovmf", fixture("ovmf_AmdSev_suffix.bin"), "--vcpus", "1", "--vcpu-type", "EPYC-v4", "--sign-key", key); code != exitUsage {
		t.Errorf("--sign-key without --reference-values: exit %d", code)
	}
}

func TestPolicyDefault(t *testing.T) {
	t.Parallel()
	code, out, _ := runCmd(policyCmd, "default")
	if code != 0 || out != policy.DefaultModule() {
		t.Fatalf("policy default: %d, %d bytes", code, len(out))
	}
}
