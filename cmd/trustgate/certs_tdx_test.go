package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/testkit"
)

// certs fetch puts the TDX collateral of quotes and --fmspc platforms into
// the bundle (from a PCS serving Intel's 2025 answers as Intel does), each
// quote verified with it; certs import verifies and stores it; verify
// --offline then works from it alone on a host that never reached PCS; a
// bundle with a changed TDX document is refused.
//
// Not parallel: it points the user cache directory at a temporary one.
func TestCertsFetchImportTDX(t *testing.T) {
	p := testkit.NewPCS(t)
	if err := p.ServeIntel2025(tdxData); err != nil {
		t.Fatal(err)
	}
	const at = "2025-11-20T00:00:00Z"
	bundle := filepath.Join(t.TempDir(), "bundle.json")
	code, out, errOut := runCLI("certs", "fetch", "--out", bundle, "--pcs-url", p.URL, "--pcs-root-crl-url", p.URL+testkit.RootCRLPath,
		"--rate", "1ms", "--cache-dir", t.TempDir(), "--at", at, tdxFile("teekit-phala-quote.dat"), "--fmspc", "00806F050000")
	// TCB infos of two FMSPCs, the QE identity, the platform CA's CRL, the root's CRL.
	if code != exitOK || !strings.Contains(out, "0 VCEKs, 0 CRLs, 0 certificate chains, 5 TDX collateral documents") {
		t.Fatalf("fetch: exit %d\n%s%s", code, out, errOut)
	}
	fetched := p.Requests("tcb")

	t.Setenv("XDG_CACHE_HOME", t.TempDir()) // the air-gapped host
	code, out, errOut = runCLI("certs", "import", "--at", at, bundle)
	if code != exitOK || !strings.Contains(out, "imported 5 TDX collateral documents") {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	for _, q := range []string{"teekit-phala-quote.dat", "teekit-gcp-quote-v4.json"} {
		code, out, errOut = runCLI("verify", tdxFile(q), "--offline", "--at", at)
		if code != exitOK || !strings.Contains(out, "tcb_status:        UpToDate") {
			t.Errorf("verify --offline %s after import: exit %d\n%s%s", q, code, out, errOut)
		}
	}
	if p.Requests("tcb") != fetched {
		t.Error("verify --offline asked PCS")
	}

	// A changed TCB info in the bundle: refused, exit 1.
	var b map[string]any
	raw, _ := os.ReadFile(bundle)
	if err := json.Unmarshal(raw, &b); err != nil {
		t.Fatal(err)
	}
	e := b["tdx"].([]any)[0].(map[string]any)
	e["body"] = "eyJ0Y2JJbmZvIjp7fSwic2lnbmF0dXJlIjoiMDAifQ==" // {"tcbInfo":{},"signature":"00"}
	tampered, _ := json.Marshal(b)
	if code, _, errOut := runCLI("certs", "import", "--at", at, "--cache-dir", t.TempDir(), writeTemp(t, "t.json", tampered)); code != exitRejected {
		t.Errorf("tampered TDX bundle: exit %d\n%s", code, errOut)
	}
	// Imported at the wall clock, the 2025 collateral is past its nextUpdate.
	if code, _, _ := runCLI("certs", "import", "--cache-dir", t.TempDir(), bundle); code != exitRejected {
		t.Errorf("expired TDX collateral imported now: exit %d", code)
	}
	if code, _, _ := runCLI("certs", "fetch", "--fmspc", "xyz"); code != exitUsage {
		t.Errorf("--fmspc xyz: exit %d", code)
	}
}
