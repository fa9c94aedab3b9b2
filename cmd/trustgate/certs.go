package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"slices"
	"time"

	"github.com/trustgate/trustgate/internal/atomicfile"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/certs"
	"github.com/trustgate/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/pcs"
	"github.com/trustgate/trustgate/internal/tee/snp"
	"github.com/trustgate/trustgate/internal/tee/tdx"
	"github.com/trustgate/trustgate/internal/tiered"
)

const certsUsage = `usage: trustgate certs fetch [flags] [REPORT...]
       trustgate certs import [flags] BUNDLE

fetch gets from the AMD KDS the VCEKs of the given reports (any form
trustgate verify reads) and of --chip / --list entries, with the certificate
chains and CRLs of their products, and writes them as one bundle file (JSON).
Each report is verified with the VCEK fetched for it. For Intel TDX
quotes (and --fmspc entries) it gets from Intel's PCS the collateral they
need — the TCB info of the platform's FMSPC, the TD QE identity, the PCK
CA's and the root's CRLs, with their issuer chains — each quote verified
with it, into the same bundle.

import verifies a bundle (VCEKs chain to AMD's pinned roots, CRLs are signed
by the pinned ARK and current; TDX collateral verifies under the pinned
Intel SGX Root CA and is current) and stores it in the certificate disk
cache (TDX collateral in its pcs subdirectory, or the user cache dir's
trustgate/pcs), where 'trustgate verify --offline' and 'trustgate serve'
find it.

A chip is PRODUCT:HWID:TCB, e.g. Milan:<128 hex>:bl=3,tee=0,snp=8,ucode=115
or Turin:<16 hex>:fmc=1,bl=3,tee=2,snp=5,ucode=97 (TCB levels of
REPORTED_TCB), or with TCB as 0x and 16 hex digits (the raw REPORTED_TCB).

Exit status: 0 done, 1 a report did not verify, 2 usage error, 3 the KDS
could not provide something (the bundle then holds the rest).
`

func cmdCerts(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, certsUsage)
		return exitUsage
	}
	switch args[0] {
	case "fetch":
		return certsFetch(args[1:], stdout, stderr)
	case "import":
		return certsImport(args[1:], stdout, stderr)
	case "-h", "--help", "help":
		fmt.Fprint(stdout, certsUsage)
		return exitOK
	}
	fmt.Fprintf(stderr, "trustgate certs: unknown subcommand %q\n\n%s", args[0], certsUsage)
	return exitUsage
}

// chipList is a repeatable --chip flag.
type chipList []snp.KeyRequest

func (c *chipList) String() string { return fmt.Sprint(len(*c), " chips") }

func (c *chipList) Set(s string) error {
	req, err := certs.ParseKeyRequest(s)
	if err != nil {
		return err
	}
	*c = append(*c, req)
	return nil
}

func certsFetch(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("certs fetch", flag.ContinueOnError)
	cli.Conventions(fs, "trustgate certs fetch", stdout, stderr, func(w io.Writer) { fmt.Fprint(w, certsUsage+"\nfetch flags:\n"); fs.PrintDefaults() })
	kdsURL := fs.String("kds-url", certs.DefaultKDSURL, "AMD KDS base `URL`")
	out := fs.String("out", "trustgate-certs.json", "write the bundle to `FILE`")
	var chips chipList
	fs.Var(&chips, "chip", "a chip and TCB, `PRODUCT:HWID:TCB` (repeatable)")
	list := fs.String("list", "", "read chips from `FILE`, one PRODUCT:HWID:TCB per line (# comments)")
	vlek := fs.Bool("vlek", false, "also the VLEK chains and CRLs of the products")
	noCRLs := fs.Bool("no-crls", false, "leave the CRLs out")
	cacheDir := fs.String("cache-dir", "", "certificate cache `DIR` (default the user cache dir's trustgate/certs)")
	rate := fs.Duration("rate", certs.DefaultRateInterval, "at most one KDS request per this `DURATION` (and kind)")
	var fmspcs fmspcList
	fs.Var(&fmspcs, "fmspc", "TDX: the collateral of a platform, `FMSPC[:platform|processor]` (12 hex; PCK CA, default platform; repeatable)")
	pcsURL := fs.String("pcs-url", pcs.DefaultURL, "TDX: Intel PCS base `URL` (API v4)")
	rootCRLURL := fs.String("pcs-root-crl-url", pcs.DefaultRootCRLURL, "TDX: where the Intel SGX Root CA's CRL is fetched (`URL`)")
	at := fs.String("at", "", "TDX: judge the collateral (and verify the quotes) at this RFC 3339 `time` (default now)")
	reports, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "trustgate certs fetch: "+format+"\n", a...)
		return exitUsage
	}
	if *list != "" {
		more, err := certs.ReadChipListFile(*list)
		if err != nil {
			return usageErr("--list: %v", err)
		}
		chips = append(chips, more...)
	}
	if len(reports) == 0 && len(chips) == 0 && len(fmspcs) == 0 {
		return usageErr("nothing to fetch: give REPORT or QUOTE files, --chip, --list or --fmspc")
	}
	// TDX quotes go to PCS, SEV-SNP reports to the KDS.
	quotes := map[string][]byte{}
	var snpReports []string
	for _, r := range reports {
		raw, err := readAtMost(r, tdx.MaxInputSize+1)
		if err != nil {
			return usageErr("%v", err)
		}
		if !isTDX(raw) {
			snpReports = append(snpReports, r)
			continue
		}
		if q, ok := jsonQuote(raw); ok {
			raw = q
		}
		ev, err := tdx.DecodeQuote(raw)
		if err != nil {
			return usageErr("%s: %v", r, attest.Detail(err))
		}
		quotes[r] = ev.Quote
	}
	reports = snpReports
	evs := make([]snp.Evidence, len(reports))
	for i, r := range reports {
		raw, err := readAtMost(r, snp.MaxInputSize+1)
		if err != nil {
			return usageErr("%v", err)
		}
		if evs[i], err = snp.DecodeReport(raw); err != nil {
			return usageErr("%s: %v", r, attest.Detail(err))
		}
	}
	// A CLI waits for its fetches to end (FetchWait -1).
	svc, err := certs.New(certs.Config{Settings: tiered.Settings{Dir: *cacheDir, RateInterval: *rate, Logger: cliLogger(stderr), FetchWait: -1}, KDSURL: *kdsURL})
	if err != nil {
		return usageErr("%v", err)
	}
	defer svc.Close()
	ctx := context.Background()

	code := exitOK
	worse := func(c int) {
		if code == exitOK || c == exitRejected {
			code = c
		}
	}
	reqs := slices.Clone(chips)
	var products []snp.Product
	for i, ev := range evs {
		rec := &recordingKeys{src: svc}
		_, err := snp.New(snp.Options{Keys: rec, AllowDebug: true}).Verify(ctx, ev)
		switch {
		case rec.got == nil:
			fmt.Fprintf(stderr, "%s: no VCEK: %s: %s\n", reports[i], attest.ReasonOf(err), attest.Detail(err))
			worse(exitUnavailable)
		case err != nil:
			fmt.Fprintf(stderr, "%s: the report does not verify with its VCEK: %s: %s\n", reports[i], attest.ReasonOf(err), attest.Detail(err))
			worse(exitRejected)
		default:
			reqs = append(reqs, *rec.got)
		}
	}
	var o certs.ExportOptions
	o.NoCRLs = *noCRLs
	for _, r := range reqs {
		if *vlek && !slices.Contains(products, r.Product) {
			products = append(products, r.Product)
			o.Chains = append(o.Chains, certs.ChainRef{Product: r.Product, Signer: snp.SignerVLEK})
		}
	}
	b, err := svc.Export(ctx, reqs, o)
	if err != nil {
		for _, e := range unjoin(err) {
			fmt.Fprintf(stderr, "trustgate certs fetch: %s: %s\n", attest.ReasonOf(e), attest.Detail(e))
		}
		worse(exitUnavailable)
	}
	nTDX := 0
	if len(quotes) > 0 || len(fmspcs) > 0 {
		var c int
		clock, err := atClock(*at)
		if err != nil {
			return usageErr("%v", err)
		}
		b.TDX, nTDX, c = fetchTDX(quotes, fmspcs, *pcsURL, *rootCRLURL, *cacheDir, *rate, clock, stderr)
		if c == exitUsage {
			return c
		}
		if c != exitOK {
			worse(c)
		}
	}
	if len(b.VCEKs) == 0 && len(b.CRLs) == 0 && nTDX == 0 {
		fmt.Fprintln(stderr, "trustgate certs fetch: nothing fetched; no bundle written")
		worse(exitUnavailable)
		return code
	}
	if err := writeBundle(*out, b); err != nil {
		fmt.Fprintf(stderr, "trustgate certs fetch: %v\n", err)
		return exitUsage
	}
	fmt.Fprintf(stdout, "wrote %s: %d VCEKs, %d CRLs, %d certificate chains, %d TDX collateral documents\n", *out, len(b.VCEKs), len(b.CRLs), len(b.Chains), nTDX)
	return code
}

func certsImport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("certs import", flag.ContinueOnError)
	cli.Conventions(fs, "trustgate certs import", stdout, stderr, func(w io.Writer) { fmt.Fprint(w, certsUsage+"\nimport flags:\n"); fs.PrintDefaults() })
	cacheDir := fs.String("cache-dir", "", "certificate cache `DIR` (default the user cache dir's trustgate/certs)")
	at := fs.String("at", "", "TDX: judge the collateral at this RFC 3339 `time` (default now)")
	pos, err := parseInterspersed(fs, args)
	if errors.Is(err, flag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		return exitUsage
	}
	if len(pos) != 1 {
		fmt.Fprintln(stderr, "trustgate certs import: want exactly one BUNDLE file")
		return exitUsage
	}
	f, err := os.Open(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "trustgate certs import: %v\n", err)
		return exitUsage
	}
	b, err := certs.ReadBundle(f)
	f.Close()
	if err != nil {
		fmt.Fprintf(stderr, "trustgate certs import: %s: %v\n", pos[0], err)
		return exitUsage
	}
	dir := *cacheDir
	if dir == "" {
		if dir, err = certs.DefaultDir(); err != nil {
			fmt.Fprintf(stderr, "trustgate certs import: no user cache directory (%v); give --cache-dir\n", err)
			return exitUsage
		}
	}
	svc, err := certs.New(certs.Config{Settings: tiered.Settings{Dir: dir, Offline: true, Logger: cliLogger(stderr)}})
	if err != nil {
		fmt.Fprintf(stderr, "trustgate certs import: %v\n", err)
		return exitUsage
	}
	defer svc.Close()
	res, err := svc.Import(context.Background(), b)
	if err != nil {
		fmt.Fprintf(stderr, "trustgate certs import: %s: %v\n", pos[0], err)
		return exitRejected
	}
	fmt.Fprintf(stdout, "imported %d VCEKs and %d CRLs into %s", res.VCEKs, res.CRLs, dir)
	if res.Kept > 0 {
		fmt.Fprintf(stdout, " (%d older CRLs not imported: newer ones are held)", res.Kept)
	}
	fmt.Fprintln(stdout)
	if len(b.TDX) > 0 {
		clock, err := atClock(*at)
		if err != nil {
			fmt.Fprintf(stderr, "trustgate certs import: %v\n", err)
			return exitUsage
		}
		tres, tdir, err := importTDX(b.TDX, *cacheDir, clock, stderr)
		if err != nil {
			fmt.Fprintf(stderr, "trustgate certs import: %s: TDX collateral: %v\n", pos[0], err)
			return exitRejected
		}
		fmt.Fprintf(stdout, "imported %d TDX collateral documents into %s", tres.Stored, tdir)
		if tres.Kept > 0 {
			fmt.Fprintf(stdout, " (%d older ones not imported: newer ones are held)", tres.Kept)
		}
		fmt.Fprintln(stdout)
	}
	return exitOK
}

// verifyKeys is the certificate source of `trustgate verify`: the
// certificate service over the user cache directory (where `certs import`
// puts bundles), asking the KDS only when not offline. now is the clock
// freshness is judged by (nil: time.Now).
func verifyKeys(kdsURL string, offline bool, now func() time.Time, stderr io.Writer) (*certs.Service, error) {
	return certs.New(verifyKeysConfig(kdsURL, offline, now, stderr))
}

// verifyKeysConfig is the certificate service of `trustgate verify`: it
// gives up on a KDS that does not answer after certs.DefaultFetchWait per
// fetch (the server's cert_fetch_wait; a hanging KDS is vcek_unavailable,
// exit 3, not a minute and a half of waiting), and waits for its fetches to
// end rather than leave them to the background (FetchWait -1).
func verifyKeysConfig(kdsURL string, offline bool, now func() time.Time, stderr io.Writer) certs.Config {
	return certs.Config{Settings: tiered.Settings{Offline: offline, Clock: now, Logger: cliLogger(stderr), FetchTimeout: certs.DefaultFetchWait, FetchWait: -1}, KDSURL: kdsURL}
}

// recordingKeys passes key requests on and remembers the one that was
// answered.
type recordingKeys struct {
	src snp.KeySource
	got *snp.KeyRequest
}

func (r *recordingKeys) EndorsementKey(ctx context.Context, req snp.KeyRequest) ([]byte, error) {
	der, err := r.src.EndorsementKey(ctx, req)
	if err == nil {
		req.HWID = slices.Clone(req.HWID)
		r.got = &req
	}
	return der, err
}

func cliLogger(w io.Writer) *slog.Logger {
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: slog.LevelWarn}))
}

// writeBundle replaces path with b.
func writeBundle(path string, b *certs.Bundle) error {
	var buf bytes.Buffer
	if err := b.Write(&buf); err != nil {
		return err
	}
	return atomicfile.Write(path, buf.Bytes(), 0o600)
}

// unjoin splits an errors.Join error into its parts.
func unjoin(err error) []error {
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		return j.Unwrap()
	}
	return []error{err}
}
