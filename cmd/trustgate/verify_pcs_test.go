package main

import (
	"io"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/certs"
	"github.com/trustgate/trustgate/internal/testkit"
)

// verify without --collateral fetches Intel's collateral from --pcs-url
// (a PCS serving Intel's 2025 answers as Intel does), keeps it in the
// collateral cache, and a later --offline run verifies from that cache
// alone; a quote whose collateral is not cached is then
// collateral_unavailable (exit 3).
//
// Not parallel: it points the user cache directory at a temporary one.
func TestVerifyCLITDXOnline(t *testing.T) {
	p := testkit.NewPCS(t)
	if err := p.ServeIntel2025(tdxData); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_CACHE_HOME", t.TempDir())
	online := []string{"--pcs-url", p.URL, "--pcs-root-crl-url", p.URL + testkit.RootCRLPath, "--at", "2025-11-20T00:00:00Z"}
	for i, args := range [][]string{online, online, {"--offline", "--at", "2025-11-20T00:00:00Z"}} {
		code, out, errOut := runCLI(append([]string{"verify", tdxFile("teekit-phala-quote.dat")}, args...)...)
		if code != exitOK || !strings.HasPrefix(out, "VERIFIED") || !strings.Contains(out, "tcb_status:        UpToDate") {
			t.Fatalf("run %d %v: exit %d\n%s%s", i, args, code, out, errOut)
		}
	}
	if n := p.Requests("tcb"); n != 1 {
		t.Errorf("%d TCB info requests for three runs, want 1", n)
	}
	code, out, _ := runCLI("verify", tdxFile("teekit-gcp-quote-v4.json"), "--offline", "--at", "2025-11-20T00:00:00Z")
	if code != exitUnavailable || !strings.HasPrefix(out, "REJECTED: collateral_unavailable") {
		t.Errorf("offline, FMSPC not cached: exit %d\n%s", code, out)
	}
	p.SetFault("tcb", testkit.Fault{Status: 500})
	code, out, _ = runCLI(append([]string{"verify", tdxFile("teekit-gcp-quote-v4.json")}, online...)...)
	if code != exitUnavailable || !strings.Contains(out, "500") {
		t.Errorf("PCS 500: exit %d\n%s", code, out)
	}
}

// `trustgate verify` gives up on a KDS or PCS that hangs when the server
// would (issue 21, item 19): each fetch is bounded by the server's fetch
// wait, not 45 s (twice, VCEK and CRL, was 90 s).
func TestVerifyGivesUpLikeTheServer(t *testing.T) {
	t.Parallel()
	c := verifyKeysConfig(certs.DefaultKDSURL, false, nil, io.Discard)
	if c.FetchTimeout <= 0 || c.FetchTimeout > certs.DefaultFetchWait {
		t.Errorf("verify's KDS fetch timeout is %v, the server's wait %v", c.FetchTimeout, certs.DefaultFetchWait)
	}
}
