package main

import (
	"context"
	"crypto/ecdsa"
	"crypto/sha512"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-sev-guest/abi"

	"github.com/trustgate/trustgate/client"
	"github.com/trustgate/trustgate/internal/agent"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/sim"
)

const benchUsage = `usage: trustgate bench --verifier URL [-n N] [-c C] [--tee sev-snp|tdx] [--sim-measurement HEX] [--ca FILE] [--cert FILE --key FILE]

bench is a load generator for a running 'trustgate serve --dev-simulator'.
It prepares N attest requests (a challenge each and a simulated SEV-SNP
report binding it and an ephemeral key, all before the clock starts), sends
them from C concurrent connections, and reports attestations per second and
latencies. As a baseline in the same run it measures how many bare ECDSA
P-384 report-signature verifications per second this machine does on all its
cores (before and after the load), and prints the ratio: the share of that
ceiling the whole service reaches end to end. The ratio is meaningful when
the verifier runs on this machine; the load generator's own work counts
against it.

Exit status: 0 every attestation affirmed, 1 some were refused (the reasons
are counted), 2 usage error, 3 the verifier is unavailable.

flags:
`

func cmdBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, benchUsage); fs.PrintDefaults() }
	verifierURL := fs.String("verifier", "", "verifier base `URL` (serving with --dev-simulator)")
	n := fs.Int("n", 4000, "attestations to send")
	c := fs.Int("c", 8, "concurrent connections")
	simMeasurement := fs.String("sim-measurement", "", "launch measurement of the simulated guests (48 bytes, `HEX`; default 5a…5a)")
	tee := fs.String("tee", "sev-snp", "the simulated guests' TEE: sev-snp (reports) or tdx (quotes; the baseline stays ECDSA P-384)")
	caFile := fs.String("ca", "", "trust the verifier's TLS certificate under this CA `FILE` (PEM)")
	certFile := fs.String("cert", "", "client TLS certificate `FILE` (PEM), with --key")
	keyFile := fs.String("key", "", "client TLS key `FILE` (PEM), with --cert")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "trustgate bench: "+format+"\n", a...)
		return exitUsage
	}
	switch {
	case fs.NArg() > 0:
		return usageErr("unexpected arguments %q", fs.Args())
	case *verifierURL == "":
		return usageErr("--verifier is required")
	case *n < 1 || *n > 1_000_000:
		return usageErr("-n %d: want 1 to 1000000", *n)
	case *c < 1 || *c > 1024:
		return usageErr("-c %d: want 1 to 1024", *c)
	case *tee != "sev-snp" && *tee != "tdx":
		return usageErr("--tee %q: want sev-snp or tdx", *tee)
	}
	m, err := sim.ParseMeasurement(*simMeasurement)
	if err != nil {
		return usageErr("--sim-measurement: %v", err)
	}
	hc, err := client.NewHTTPClient(*caFile, *certFile, *keyFile)
	if err != nil {
		return usageErr("%v", err)
	}
	// Keep every worker's connection open between requests: the figure is
	// the verifier's, not TCP's.
	hc.Transport.(*http.Transport).MaxIdleConnsPerHost = *c
	dev, err := sim.New(sim.Options{Measurement: m})
	if err != nil {
		fmt.Fprintf(stderr, "trustgate bench: %v\n", err)
		return exitUnavailable
	}
	var guest agent.Device = agent.SimDevice{Sim: dev}
	if *tee == "tdx" {
		td, err := sim.NewTDX(sim.TDXOptions{MRTD: m})
		if err != nil {
			fmt.Fprintf(stderr, "trustgate bench: %v\n", err)
			return exitUnavailable
		}
		guest = agent.SimTDXDevice{Sim: td}
	}
	b := &bench{c: &client.Client{BaseURL: *verifierURL, HTTP: hc}, dev: dev, guest: guest, n: *n, conc: *c}
	res, err := b.run(context.Background())
	if err != nil {
		fmt.Fprintf(stderr, "trustgate bench: %v\n", err)
		return exitUnavailable
	}
	res.print(stdout, *verifierURL, *c)
	switch {
	case res.unavailable > 0:
		return exitUnavailable
	case res.passed < *n:
		return exitRejected
	}
	return exitOK
}

type bench struct {
	c   *client.Client
	dev *sim.Device
	// guest makes the attested evidence: dev's reports, or TDX quotes.
	guest agent.Device
	n     int
	conc  int
}

type benchResult struct {
	passed, unavailable int
	refused             map[string]int // reason → count
	elapsed             time.Duration
	latencies           []time.Duration // of every request, sorted
	ecdsaPerSec         float64         // mean of the baselines before and after
	cores               int
}

func (b *bench) run(ctx context.Context) (*benchResult, error) {
	reqs, err := b.prepare(ctx)
	if err != nil {
		return nil, err
	}
	// The baseline: the same kind of report's signature, verified bare.
	report := reqs[0].Request.Evidence.Report
	if report == nil { // TDX quotes: the baseline is still an SEV-SNP report's
		report, _ = b.dev.Report([64]byte{})
	}
	before, err := ecdsaRate(report, b.dev.VCEKPublicKey(), time.Second)
	if err != nil {
		return nil, err
	}
	if time.Now().After(earliest(reqs)) {
		return nil, errors.New("the first nonces expired before the load began: lower -n or raise the verifier's nonce_ttl")
	}
	res := b.load(ctx, reqs)
	after, err := ecdsaRate(report, b.dev.VCEKPublicKey(), time.Second)
	if err != nil {
		return nil, err
	}
	res.ecdsaPerSec, res.cores = (before+after)/2, runtime.GOMAXPROCS(0)
	return res, nil
}

// prepare gets n challenges and simulated reports, on every core.
func (b *bench) prepare(ctx context.Context) ([]*agent.Prepared, error) {
	reqs := make([]*agent.Prepared, b.n)
	var next atomic.Int64
	errs := make(chan error, runtime.GOMAXPROCS(0))
	var wg sync.WaitGroup
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= b.n {
					return
				}
				p, err := agent.Prepare(ctx, b.c, b.guest)
				if err != nil {
					errs <- fmt.Errorf("preparing: %w", err)
					next.Store(int64(b.n)) // the others stop too
					return
				}
				reqs[i] = p
			}
		})
	}
	wg.Wait()
	select {
	case err := <-errs:
		return nil, err
	default:
	}
	return reqs, nil
}

func earliest(reqs []*agent.Prepared) time.Time {
	t := reqs[0].Expires
	for _, r := range reqs[1:] {
		if r.Expires.Before(t) {
			t = r.Expires
		}
	}
	return t
}

// load sends reqs from b.conc workers and times each.
func (b *bench) load(ctx context.Context, reqs []*agent.Prepared) *benchResult {
	res := &benchResult{refused: map[string]int{}, latencies: make([]time.Duration, len(reqs))}
	var mu sync.Mutex
	var next atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	for range b.conc {
		wg.Go(func() {
			for {
				i := int(next.Add(1)) - 1
				if i >= len(reqs) {
					return
				}
				t0 := time.Now()
				_, err := b.c.Attest(ctx, reqs[i].Request)
				res.latencies[i] = time.Since(t0)
				mu.Lock()
				var apiErr *client.APIError
				switch {
				case err == nil:
					res.passed++
				case errors.As(err, &apiErr) && apiErr.Reason != "" && !attest.Reason(apiErr.Reason).Unavailable():
					res.refused[apiErr.Reason]++
				default:
					res.unavailable++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	res.elapsed = time.Since(start)
	slices.Sort(res.latencies)
	return res
}

// ecdsaRate returns how many verifications of report's signature under key
// all cores do per second, measured for about d.
func ecdsaRate(report []byte, key *ecdsa.PublicKey, d time.Duration) (float64, error) {
	der, err := abi.ReportToSignatureDER(report)
	if err != nil {
		return 0, err
	}
	digest := sha512.Sum384(abi.SignedComponent(report))
	if !ecdsa.VerifyASN1(key, digest[:], der) {
		return 0, errors.New("the simulated report's signature does not verify")
	}
	var count atomic.Int64
	var wg sync.WaitGroup
	start := time.Now()
	deadline := start.Add(d)
	for range runtime.GOMAXPROCS(0) {
		wg.Go(func() {
			for time.Now().Before(deadline) {
				ecdsa.VerifyASN1(key, digest[:], der)
				count.Add(1)
			}
		})
	}
	wg.Wait()
	return float64(count.Load()) / time.Since(start).Seconds(), nil
}

func (r *benchResult) print(w io.Writer, url string, conc int) {
	total := len(r.latencies)
	perSec := float64(total) / r.elapsed.Seconds()
	q := func(p float64) time.Duration { return r.latencies[min(total-1, int(p*float64(total)))] }
	ms := func(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }
	fmt.Fprintf(w, "trustgate bench: %d attestations to %s from %d connections\n", total, url, conc)
	var refused []string
	for reason, n := range r.refused {
		refused = append(refused, fmt.Sprintf("%s %d", reason, n))
	}
	sort.Strings(refused)
	fmt.Fprintf(w, "  affirmed     %d, refused %d, unavailable %d", r.passed, total-r.passed-r.unavailable, r.unavailable)
	if len(refused) > 0 {
		fmt.Fprintf(w, " (%s)", strings.Join(refused, ", "))
	}
	fmt.Fprintln(w)
	fmt.Fprintf(w, "  throughput   %.0f attestations/s (%.2f s)\n", perSec, r.elapsed.Seconds())
	fmt.Fprintf(w, "  latency      p50 %s, p90 %s, p99 %s, max %s\n", ms(q(0.50)), ms(q(0.90)), ms(q(0.99)), ms(r.latencies[total-1]))
	fmt.Fprintf(w, "  baseline     %.0f bare ECDSA P-384 verifications/s on %d cores (same run)\n", r.ecdsaPerSec, r.cores)
	fmt.Fprintf(w, "  ratio        %.2f (throughput / baseline)\n", perSec/r.ecdsaPerSec)
}
