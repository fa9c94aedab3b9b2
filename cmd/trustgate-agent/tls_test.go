package main

import (
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/app/apptest"
	"github.com/trustgate/trustgate/internal/testkit"
)

// --ca, --cert and --key against a verifier that serves TLS and admits
// only agents with a client certificate under its client CA.
func TestAgentMutualTLS(t *testing.T) {
	t.Parallel()
	p := testkit.NewPKI(t)
	cfg := apptest.SimVerifier(t, nil)
	cfg.TLSCert, cfg.TLSKey, cfg.ClientCA = p.ServerCert, p.ServerKey, p.CAFile
	url := apptest.Start(t, cfg)

	base := []string{"attest", "--verifier", url, "--simulate", "--attempts", "1"}
	if code, out, errOut := runAgent(append(base, "--ca", p.CAFile, "--cert", p.ClientCert, "--key", p.ClientKey)...); code != exitOK || !strings.HasPrefix(out, "AFFIRMING") {
		t.Fatalf("with the client certificate: exit %d\n%s%s", code, out, errOut)
	}
	if code, out, _ := runAgent(append(base, "--ca", p.CAFile)...); code != exitRejected || !strings.HasPrefix(out, "REJECTED: unauthorized_client") {
		t.Errorf("without a client certificate: exit %d\n%s", code, out)
	}
	// Without the CA the verifier's certificate is not trusted: no retry.
	retrying := append(base[:len(base)-1:len(base)-1], "5")
	if code, _, errOut := runAgent(retrying...); code != exitUnavailable || strings.Contains(errOut, "retrying") ||
		!strings.Contains(errOut, "certificate") {
		t.Errorf("without the CA: exit %d, want %d and no retry\n%s", code, exitUnavailable, errOut)
	}
	if code, _, _ := runAgent(append(base, "--cert", p.ClientCert)...); code != exitUsage {
		t.Errorf("--cert without --key: exit %d", code)
	}
}
