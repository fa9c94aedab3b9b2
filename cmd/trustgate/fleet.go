package main

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/trustgate/trustgate/internal/admin"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/launch"
	"github.com/trustgate/trustgate/internal/secretfile"
)

const fleetUsage = `usage:
  trustgate fleet lookup --launch-key-file FILE (--report-id HEX | --td-id HEX)
                         [--admin URL --admin-token-file FILE [--ca FILE]] [--json]
      computes the launch pseudonym the verifier keeps for one guest, from the
      verifier's launch_key_file: an SEV-SNP guest by its REPORT_ID (32 bytes,
      the report_id of 'trustgate verify --json'), a TDX guest by its TD
      identity (MRTD || MRCONFIGID || MROWNER || MROWNERCONFIG, 192 bytes).
      Without --admin it prints the pseudonym; with --admin it fetches that
      launch's record from the verifier's admin API (GET /admin/v1/launches).

Exit status: 0 printed, 1 no record of the launch, 2 usage error,
3 the admin API did not answer.
`

func cmdFleet(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "lookup" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, fleetUsage)
			return exitOK
		}
		fmt.Fprint(stderr, fleetUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("fleet lookup", flag.ContinueOnError)
	cli.Conventions(fs, "trustgate fleet lookup", stdout, stderr, func(w io.Writer) { fmt.Fprint(w, fleetUsage) })
	reportID := &hexFlag{n: 32}
	tdID := &hexFlag{n: 4 * 48}
	fs.Var(reportID, "report-id", "the SEV-SNP guest's REPORT_ID (64 hex characters)")
	fs.Var(tdID, "td-id", "the TDX guest's MRTD||MRCONFIGID||MROWNER||MROWNERCONFIG (384 hex characters)")
	keyFile := fs.String("launch-key-file", "", "the verifier's launch_key_file")
	adminURL := fs.String("admin", "", "the verifier's admin API base `URL`")
	tokenFile := fs.String("admin-token-file", "", "admin bearer token `FILE` (owner-only)")
	caFile := fs.String("ca", "", "CA `FILE` (PEM) that the admin API's TLS certificate chains to (default: system roots)")
	asJSON := fs.Bool("json", false, "print JSON")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "trustgate fleet lookup: "+format+"\n", a...)
		return code
	}
	if fs.NArg() != 0 || *keyFile == "" || (reportID.val == nil) == (tdID.val == nil) {
		return fail(exitUsage, "--launch-key-file and one of --report-id or --td-id are required")
	}
	if (*adminURL == "") != (*tokenFile == "") {
		return fail(exitUsage, "--admin and --admin-token-file go together")
	}
	key, err := launch.ReadKey(*keyFile)
	if err != nil {
		return fail(exitUsage, "launch key: %v", err)
	}
	k, err := launch.NewKeyer(key)
	clear(key)
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	tee, id := attest.TEESEVSNP, reportID.val
	if tdID.val != nil {
		tee, id = attest.TEETDX, tdID.val
	}
	p := k.Launch(tee, id)
	if *adminURL == "" {
		if *asJSON {
			json.NewEncoder(stdout).Encode(map[string]string{"launch": p.String(), "tee": tee})
		} else {
			fmt.Fprintf(stdout, "launch %s\n", p)
		}
		return exitOK
	}
	rec, code, err := fetchLaunch(*adminURL, *tokenFile, *caFile, p)
	if err != nil {
		return fail(code, "%v", err)
	}
	if *asJSON {
		json.NewEncoder(stdout).Encode(rec)
		return exitOK
	}
	chip := rec.Chip
	if chip == "" {
		chip = "(none)"
	}
	fmt.Fprintf(stdout, "launch     %s\ntee        %s\nseq        %d\nfirst_seen %s\nlast_seen  %s\nchip       %s\nanomaly    %v\n",
		rec.Launch, rec.TEE, rec.Seq, rec.FirstSeen.Format(time.RFC3339), rec.LastSeen.Format(time.RFC3339), chip, rec.Anomaly)
	return exitOK
}

// fetchLaunch asks the admin API for one launch's record; the int is the
// exit code of a failure.
func fetchLaunch(base, tokenFile, caFile string, p launch.Pseudonym) (admin.Launch, int, error) {
	tok, err := secretfile.Read(tokenFile, 4096)
	if err != nil {
		return admin.Launch{}, exitUsage, fmt.Errorf("admin token: %w", err)
	}
	u, err := url.Parse(strings.TrimRight(base, "/") + admin.PathLaunches)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return admin.Launch{}, exitUsage, errors.New("--admin: want an http(s) URL")
	}
	u.RawQuery = url.Values{"launch": {p.String()}}.Encode()
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	if caFile != "" {
		pemBytes, err := os.ReadFile(caFile)
		if err != nil {
			return admin.Launch{}, exitUsage, fmt.Errorf("--ca: %w", err)
		}
		pool := x509.NewCertPool()
		if !pool.AppendCertsFromPEM(pemBytes) {
			return admin.Launch{}, exitUsage, fmt.Errorf("--ca %s: no PEM certificates", caFile)
		}
		t.TLSClientConfig = &tls.Config{MinVersion: tls.VersionTLS12, RootCAs: pool}
	}
	c := &http.Client{Transport: t, CheckRedirect: func(req *http.Request, _ []*http.Request) error {
		return fmt.Errorf("the admin API answered with a redirect (%d); not followed", req.Response.StatusCode)
	}}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
	if err != nil {
		return admin.Launch{}, exitUsage, err
	}
	req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(tok)))
	clear(tok)
	resp, err := c.Do(req)
	if err != nil {
		return admin.Launch{}, exitUnavailable, fmt.Errorf("admin API: %w", err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return admin.Launch{}, exitRejected, fmt.Errorf("no record of launch %s (never attested, or past the retention)", p.Prefix())
	case http.StatusUnauthorized:
		return admin.Launch{}, exitUsage, errors.New("admin API: 401, the token was not accepted")
	default:
		return admin.Launch{}, exitUnavailable, fmt.Errorf("admin API: HTTP %d", resp.StatusCode)
	}
	var ls admin.Launches
	if err := json.Unmarshal(body, &ls); err != nil || len(ls.Launches) != 1 {
		return admin.Launch{}, exitUnavailable, errors.New("admin API: not one launch record in the answer")
	}
	return ls.Launches[0], exitOK, nil
}
