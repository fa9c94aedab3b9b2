package main

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/testkit"
)

const genoaChip = "Genoa:371c55d6d15cb50f16dc31d39a24e300caaabff4431e841111429b73ec45ad67ea6e687ffae7bf84b54a5d0e6d79b3ef6ff0bd8b4cff94c2163af5c5de8718e8:bl=10,tee=0,snp=23,ucode=25"

// certs fetch against a fake KDS (real AMD chains, real VCEKs at their real
// paths), certs import into the user cache directory, then verify
// --offline works from what was imported, and only from that.
//
// Not parallel: it points the user cache directory (XDG_CACHE_HOME) at a
// temporary one.
func TestCertsFetchImportVerifyOffline(t *testing.T) {
	kds := testkit.NewKDS(t, testkit.KDSOptions{})
	if err := kds.ServeTestdata(snpData); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	bundle := filepath.Join(t.TempDir(), "bundle.json")

	// AMD's CRLs cannot be faked for the real roots (they need AMD's ARK
	// key), hence --no-crls; the CRL path is tested in internal/certs.
	code, out, errOut := runCLI("certs", "fetch", "--kds-url", kds.URL, "--out", bundle, "--no-crls", "--rate", "1ms",
		"--cache-dir", t.TempDir(), td("trustee-report.bin"), td("openanolis-trustee-turin-report.bin"), "--chip", genoaChip)
	if code != exitOK || !strings.Contains(out, "3 VCEKs, 0 CRLs, 3 certificate chains") {
		t.Fatalf("fetch: exit %d\n%s%s", code, out, errOut)
	}
	if n := len(kds.Requests("cert_chain")); n != 3 {
		t.Errorf("%d cert_chain requests, want 3", n)
	}

	code, out, errOut = runCLI("certs", "import", bundle)
	if code != exitOK || !strings.Contains(out, "imported 3 VCEKs and 0 CRLs") {
		t.Fatalf("import: exit %d\n%s%s", code, out, errOut)
	}
	before := len(kds.Requests(""))
	for _, r := range []string{"trustee-report.bin", "openanolis-trustee-turin-report.bin", "trustee-genoa-e2e-report.bin"} {
		code, out, errOut = runCLI(atPinned([]string{"verify", td(r), "--offline", "--no-revocation"})...)
		if code != exitOK || !strings.HasPrefix(out, "VERIFIED") {
			t.Errorf("verify --offline %s: exit %d\n%s%s", r, code, out, errOut)
		}
	}
	// Not in the bundle: unavailable, exit 3.
	code, out, _ = runCLI(atPinned([]string{"verify", td("teekit-gcp-milan-report.bin"), "--offline", "--no-revocation"})...)
	if code != exitUnavailable || !strings.HasPrefix(out, "REJECTED: vcek_unavailable") {
		t.Errorf("verify --offline of a chip not imported: exit %d\n%s", code, out)
	}
	if n := len(kds.Requests("")); n != before {
		t.Errorf("verify --offline made %d KDS requests", n-before)
	}
}

func TestCertsCLIErrors(t *testing.T) {
	t.Parallel()
	kds := testkit.NewKDS(t, testkit.KDSOptions{})
	if err := kds.ServeTestdata(snpData); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	good := filepath.Join(dir, "good.json")
	if code, out, errOut := runCLI("certs", "fetch", "--kds-url", kds.URL, "--out", good, "--no-crls", "--rate", "1ms",
		"--cache-dir", t.TempDir(), td("trustee-report.bin")); code != exitOK {
		t.Fatalf("fetch: exit %d\n%s%s", code, out, errOut)
	}
	var b map[string]any
	raw, _ := os.ReadFile(good)
	json.Unmarshal(raw, &b)
	b["vceks"].([]any)[0].(map[string]any)["tcb"] = "7308000000000004"
	tampered, _ := json.Marshal(b)

	cases := []struct {
		name string
		args []string
		want int
	}{
		{"no subcommand", []string{"certs"}, exitUsage},
		{"unknown subcommand", []string{"certs", "frob"}, exitUsage},
		{"fetch nothing", []string{"certs", "fetch", "--kds-url", kds.URL}, exitUsage},
		{"fetch bad chip", []string{"certs", "fetch", "--chip", "Milan:xyz:bl=1"}, exitUsage},
		{"fetch unknown chip", []string{"certs", "fetch", "--kds-url", kds.URL, "--rate", "1ms", "--cache-dir", t.TempDir(),
			"--out", filepath.Join(dir, "none.json"), "--no-crls", "--chip", "Milan:" + strings.Repeat("ab", 64) + ":bl=1"}, exitUnavailable},
		{"import two files", []string{"certs", "import", good, good}, exitUsage},
		{"import not a bundle", []string{"certs", "import", td("trustee-vcek.der")}, exitUsage},
		{"import tampered", []string{"certs", "import", "--cache-dir", t.TempDir(), writeTemp(t, "t.json", tampered)}, exitRejected},
		{"import good", []string{"certs", "import", "--cache-dir", t.TempDir(), good}, exitOK},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			if code, out, errOut := runCLI(tc.args...); code != tc.want {
				t.Fatalf("exit %d, want %d\n%s%s", code, tc.want, out, errOut)
			}
		})
	}
}

// verify online fetches the VCEK once, keeps it on disk, and reuses it in
// later runs (online or offline) without asking the KDS again. Without a
// CRL signed by AMD's ARK (which a fake KDS cannot make) it fails closed.
//
// Not parallel: it points the user cache directory at a temporary one.
func TestVerifyOnlineCachesOnDisk(t *testing.T) {
	kds := testkit.NewKDS(t, testkit.KDSOptions{})
	if err := kds.ServeTestdata(snpData); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	report := td("openanolis-trustee-turin-report.bin")
	for i, args := range [][]string{
		{"--kds-url", kds.URL, "--no-revocation"},
		{"--kds-url", kds.URL, "--no-revocation"},
		{"--offline", "--no-revocation"},
	} {
		code, out, errOut := runCLI(atPinned(append([]string{"verify", report}, args...))...)
		if code != exitOK || !strings.HasPrefix(out, "VERIFIED") {
			t.Fatalf("run %d %v: exit %d\n%s%s", i, args, code, out, errOut)
		}
	}
	if n := len(kds.Requests("vcek")); n != 1 {
		t.Errorf("%d VCEK requests for three runs, want 1", n)
	}
	code, out, _ := runCLI(atPinned([]string{"verify", report, "--kds-url", kds.URL})...)
	if code != exitUnavailable || !strings.HasPrefix(out, "REJECTED: vcek_unavailable") || len(kds.Requests("crl")) == 0 {
		t.Errorf("with revocation and no AMD-signed CRL: exit %d, %d CRL requests\n%s", code, len(kds.Requests("crl")), out)
	}
}
