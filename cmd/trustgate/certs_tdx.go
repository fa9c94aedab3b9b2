package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/pcs"
	"github.com/trustgate/trustgate/internal/tee/tdx"
	"github.com/trustgate/trustgate/internal/tiered"
)

// fmspcList is the repeatable --fmspc flag: FMSPC[:platform|processor].
type fmspcList []tdx.CollateralRequest

func (f *fmspcList) String() string { return fmt.Sprint(len(*f), " FMSPCs") }

func (f *fmspcList) Set(s string) error {
	fm, ca, _ := strings.Cut(s, ":")
	if ca == "" {
		ca = "platform"
	}
	if ca != "platform" && ca != "processor" {
		return fmt.Errorf("%q: the PCK CA is platform or processor", s)
	}
	b, err := pcs.ParseFMSPC(fm)
	if err != nil {
		return err
	}
	*f = append(*f, tdx.CollateralRequest{FMSPC: b, CA: ca})
	return nil
}

// pcsDir is the TDX collateral cache beside the certificate cache dir
// (DIR/pcs), or pcs' default when dir is "".
func pcsDir(dir string) string {
	if dir == "" {
		return ""
	}
	return filepath.Join(dir, "pcs")
}

// recordingCollateral passes collateral requests on and remembers the
// ones that were answered.
type recordingCollateral struct {
	src tdx.CollateralSource
	got []tdx.CollateralRequest
}

func (r *recordingCollateral) Collateral(ctx context.Context, req tdx.CollateralRequest) (*tdx.Collateral, error) {
	c, err := r.src.Collateral(ctx, req)
	if err == nil {
		r.got = append(r.got, req)
	}
	return c, err
}

// fetchTDX gets from PCS the collateral of the quotes (each verified with
// it) and of reqs, and returns it as bundle entries (JSON) with the exit
// status: exitUnavailable when something could not be had, exitRejected
// when a quote did not verify.
func fetchTDX(quotes map[string][]byte, reqs []tdx.CollateralRequest, pcsURL, rootCRLURL, cacheDir string, rate time.Duration, at func() time.Time, stderr io.Writer) (json.RawMessage, int, int) {
	svc, err := pcs.New(pcs.Config{Settings: tiered.Settings{Dir: pcsDir(cacheDir), RateInterval: rate, Clock: at, Logger: cliLogger(stderr), FetchTimeout: 45 * time.Second, FetchWait: -1},
		URL: pcsURL, RootCRLURL: rootCRLURL,
	})
	if err != nil {
		fmt.Fprintf(stderr, "trustgate certs fetch: %v\n", err)
		return nil, 0, exitUsage
	}
	defer svc.Close()
	ctx := context.Background()
	code := exitOK
	for name, q := range quotes {
		rec := &recordingCollateral{src: svc}
		_, err := tdx.New(tdx.Options{Collateral: rec, AllowDebug: true, Now: at}).Verify(ctx, tdx.Evidence{Quote: q})
		switch {
		case rec.got == nil:
			fmt.Fprintf(stderr, "%s: no collateral: %s: %s\n", name, attest.ReasonOf(err), attest.Detail(err))
			code = exitUnavailable
		case err != nil:
			fmt.Fprintf(stderr, "%s: the quote does not verify with its collateral: %s: %s\n", name, attest.ReasonOf(err), attest.Detail(err))
			code = exitRejected
		default:
			reqs = append(reqs, rec.got...)
		}
	}
	entries, err := svc.Export(ctx, reqs)
	if err != nil {
		for _, e := range unjoin(err) {
			fmt.Fprintf(stderr, "trustgate certs fetch: %s: %s\n", attest.ReasonOf(e), attest.Detail(e))
		}
		if code == exitOK {
			code = exitUnavailable
		}
	}
	if len(entries) == 0 {
		return nil, 0, code
	}
	b, err := json.Marshal(entries)
	if err != nil {
		return nil, 0, exitUsage
	}
	return b, len(entries), code
}

// importTDX verifies and stores the TDX collateral of a bundle in the
// collateral cache beside cacheDir; it returns how many documents it
// stored and kept.
func importTDX(raw json.RawMessage, cacheDir string, at func() time.Time, stderr io.Writer) (pcs.ImportResult, string, error) {
	var entries []pcs.BundleEntry
	if err := json.Unmarshal(raw, &entries); err != nil {
		return pcs.ImportResult{}, "", fmt.Errorf("tdx: %w", err)
	}
	dir := pcsDir(cacheDir)
	if dir == "" {
		d, err := pcs.DefaultDir()
		if err != nil {
			return pcs.ImportResult{}, "", fmt.Errorf("no user cache directory (%w); give --cache-dir", err)
		}
		dir = d
	}
	svc, err := pcs.New(pcs.Config{Settings: tiered.Settings{Dir: dir, Offline: true, Clock: at, Logger: cliLogger(stderr)}})
	if err != nil {
		return pcs.ImportResult{}, "", err
	}
	defer svc.Close()
	res, err := svc.Import(context.Background(), entries)
	return res, dir, err
}

// atFlag is the --at flag of certs fetch and import: the time TDX
// collateral is judged at (default now); nil when not given.
func atClock(s string) (func() time.Time, error) {
	if s == "" {
		return nil, nil
	}
	t, err := time.Parse(time.RFC3339, s)
	if err != nil {
		return nil, fmt.Errorf("--at: %w", err)
	}
	return func() time.Time { return t }, nil
}
