package main

import (
	"bufio"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"crypto/sha512"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/google/go-sev-guest/abi"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/client"
	"github.com/trustgate/trustgate/internal/agent"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/sim"
)

const benchUsage = `usage: trustgate bench --verifier URL [--verifier URL ...] [-n N] [-c C] [--tee sev-snp|tdx|azure-snp|azure-tdx|nitro] [--sim-measurement HEX] [--ca FILE] [--cert FILE --key FILE] [--redis URL [--redis-monitor]]

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

It also reads each verifier's process_cpu_seconds_total from its /metrics
before the first challenge and after the last answer, and prints the
verifiers' CPU time per attestation (its challenge and its attest request)
and the CPU time of one bare ECDSA P-384 verification in this process
divided by it (the "server cpu" ratio; 1 would be a verifier that does
nothing but that one verification). Given several --verifier URLs, request
i goes to verifier i mod k (its challenge too), and their CPU is summed.

With --redis URL (the verifiers' redis setting), it reads Redis's INFO
before the first challenge and after the last answer and prints the Redis
commands per attestation (total_commands_processed: a script's own
commands count too), Redis's CPU time per attestation, and that CPU time
divided by the verifiers'. With --redis-monitor (a redis:// URL) it also
counts what MONITOR shows during the load: commands clients sent (one
round trip each, unless pipelined) and commands scripts ran, per
attestation, the verifiers' periodic probes and polls included. MONITOR
slows Redis: take throughput and CPU figures from a run without it.

Exit status: 0 every attestation affirmed, 1 some were refused (the reasons
are counted), 2 usage error, 3 the verifier is unavailable.

flags:
`

func cmdBench(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	cli.Conventions(fs, "trustgate bench", stdout, stderr, func(w io.Writer) { fmt.Fprint(w, benchUsage); fs.PrintDefaults() })
	var verifierURLs []string
	fs.Func("verifier", "verifier base `URL` (serving with --dev-simulator); repeat to spread the load over several", func(v string) error {
		verifierURLs = append(verifierURLs, v)
		return nil
	})
	n := fs.Int("n", 4000, "attestations to send")
	c := fs.Int("c", 8, "concurrent connections")
	simMeasurement := fs.String("sim-measurement", "", "launch measurement of the simulated guests (48 bytes, `HEX`; default 5a…5a)")
	tee := fs.String("tee", "sev-snp", "the simulated guests' TEE: sev-snp (reports), tdx (quotes; the baseline stays ECDSA P-384), azure-snp or azure-tdx (HCL report and vTPM quote; the server cpu line adds an RSA-2048 verification to the baseline), or nitro (attestation documents)")
	caFile := fs.String("ca", "", "trust the verifier's TLS certificate under this CA `FILE` (PEM)")
	certFile := fs.String("cert", "", "client TLS certificate `FILE` (PEM), with --key")
	keyFile := fs.String("key", "", "client TLS key `FILE` (PEM), with --cert")
	redisURL := fs.String("redis", "", "the verifiers' Redis `URL`: print its commands and CPU per attestation (INFO)")
	redisMonitor := fs.Bool("redis-monitor", false, "with --redis (redis://): also count the commands MONITOR shows during the load")
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
	case len(verifierURLs) == 0:
		return usageErr("--verifier is required")
	case *n < 1 || *n > 1_000_000:
		return usageErr("-n %d: want 1 to 1000000", *n)
	case *c < 1 || *c > 1024:
		return usageErr("-c %d: want 1 to 1024", *c)
	case !slices.Contains([]string{"sev-snp", "tdx", "azure-snp", "azure-tdx", "nitro"}, *tee):
		return usageErr("--tee %q: want sev-snp, tdx, azure-snp, azure-tdx or nitro", *tee)
	case *redisMonitor && *redisURL == "":
		return usageErr("--redis-monitor needs --redis")
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
	if *tee == "azure-snp" || *tee == "azure-tdx" {
		az, err := simAzure(*tee, m, nil)
		if err != nil {
			fmt.Fprintf(stderr, "trustgate bench: %v\n", err)
			return exitUnavailable
		}
		guest = agent.SimAzureDevice{Sim: az}
	}
	if *tee == "nitro" {
		enclave, err := sim.NewNitro(sim.NitroOptions{PCR0: m})
		if err != nil {
			fmt.Fprintf(stderr, "trustgate bench: %v\n", err)
			return exitUnavailable
		}
		guest = agent.SimNitroDevice{Sim: enclave}
	}
	b := &bench{dev: dev, guest: guest, n: *n, conc: *c}
	if *redisURL != "" {
		if b.redis, err = newBenchRedis(*redisURL, *redisMonitor); err != nil {
			return usageErr("--redis: %v", err)
		}
		defer b.redis.c.Close()
	}
	for _, u := range verifierURLs {
		b.cs = append(b.cs, &client.Client{BaseURL: u, HTTP: hc})
	}
	res, err := b.run(context.Background())
	var refused *refusedError
	if errors.As(err, &refused) {
		fmt.Fprintf(stderr, "trustgate bench: %v\n", err)
		return exitRejected
	}
	if err != nil {
		fmt.Fprintf(stderr, "trustgate bench: %v\n", err)
		return exitUnavailable
	}
	res.print(stdout, strings.Join(verifierURLs, ", "), *c)
	switch {
	case res.unavailable > 0:
		return exitUnavailable
	case res.passed < *n:
		return exitRejected
	}
	return exitOK
}

type bench struct {
	cs  []*client.Client // the verifiers; request i goes to cs[i % len(cs)]
	dev *sim.Device
	// guest makes the attested evidence: dev's reports, TDX quotes or Nitro
	// documents.
	guest agent.Device
	n     int
	conc  int
	redis *benchRedis // nil without --redis
}

// client is the verifier of request i.
func (b *bench) client(i int) *client.Client { return b.cs[i%len(b.cs)] }

type benchResult struct {
	passed, unavailable int
	refused             map[string]int // reason → count
	elapsed             time.Duration
	latencies           []time.Duration // of every request, sorted
	ecdsaPerSec         float64         // mean of the baselines before and after
	ecdsaCPU            time.Duration   // CPU time of one bare verification, mean of before and after
	cores               int
	// rsaCPU is the CPU time of one bare RSA-2048 PKCS#1 v1.5 SHA-256
	// verification (an Azure vTPM quote's), measured for Azure guests
	// only; 0 otherwise.
	rsaCPU time.Duration
	// serverCPU is the verifiers' CPU time from before the first challenge
	// to after the last answer (summed); serverCPUErr why it is unknown.
	serverCPU    time.Duration
	serverCPUErr error
	// challengeCPU is the part of serverCPU spent while the challenges
	// were issued (before the attestations were sent).
	challengeCPU time.Duration
	// redis is Redis's counters over the same span as serverCPU (with
	// --redis); redisErr why they are unknown.
	redis    *redisStats
	redisErr error
	// monClient and monScript are the commands MONITOR showed during the
	// load (with --redis-monitor): sent by clients, run by scripts.
	monClient, monScript int64
	monErr               error
}

// refusedError is a verifier that refuses the simulated guest before the
// load: nothing would be measured but refusals.
type refusedError struct {
	url    string
	reason string
}

func (e *refusedError) Error() string {
	if e.reason == string(attest.ReasonCertChainInvalid) {
		return fmt.Sprintf("the verifier at %s refuses the simulator's evidence (%s): bench needs a verifier serving --dev-simulator\n"+
			"  (loopback only; deploy/local/up.sh --dev starts three); nothing was measured", e.url, e.reason)
	}
	return fmt.Sprintf("the verifier at %s refuses the simulated guest (%s): approve its measurement (--sim-measurement, default 5a…5a)\n"+
		"  in the verifier's reference values; nothing was measured", e.url, e.reason)
}

// check attests once at each verifier before anything is measured, so that
// a verifier that refuses the simulated guest stops the run with the reason
// instead of a throughput of refusals.
func (b *bench) check(ctx context.Context) error {
	for _, c := range b.cs {
		p, err := agent.Prepare(ctx, c, b.guest)
		if err != nil {
			return fmt.Errorf("preparing: %w", err)
		}
		_, err = c.Attest(ctx, p.Request)
		var apiErr *client.APIError
		if errors.As(err, &apiErr) && apiErr.Reason != "" && !attest.Reason(apiErr.Reason).Unavailable() {
			return &refusedError{url: c.BaseURL, reason: apiErr.Reason}
		}
		if err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) run(ctx context.Context) (*benchResult, error) {
	if err := b.check(ctx); err != nil {
		return nil, err
	}
	cpu0, cpuErr := b.serverCPU(ctx)
	var redis0 redisStats
	var redisErr error
	if b.redis != nil {
		redis0, redisErr = b.redis.stats(ctx)
	}
	reqs, err := b.prepare(ctx)
	if err != nil {
		return nil, err
	}
	var cpuMid time.Duration
	if cpuErr == nil {
		cpuMid, cpuErr = b.serverCPU(ctx)
	}
	// The baseline: the same kind of report's signature, verified bare.
	report := reqs[0].Request.Evidence.Report
	if report == nil { // TDX quotes, Nitro documents: the baseline is still an SEV-SNP report's
		report, _ = b.dev.Report([64]byte{})
	}
	before, err := ecdsaRate(report, b.dev.VCEKPublicKey(), time.Second)
	if err != nil {
		return nil, err
	}
	if time.Now().After(earliest(reqs)) {
		return nil, errors.New("the first nonces expired before the load began: lower -n or raise the verifier's nonce_ttl")
	}
	var monErr error
	if b.redis != nil && b.redis.monitor != nil {
		monErr = b.redis.monitor.start(ctx, b.redis.url)
	}
	res := b.load(ctx, reqs)
	if b.redis != nil && b.redis.monitor != nil && monErr == nil {
		res.monClient, res.monScript, monErr = b.redis.monitor.stop()
	}
	res.monErr = monErr
	if b.redis != nil && redisErr == nil {
		var redis1 redisStats
		if redis1, redisErr = b.redis.stats(ctx); redisErr == nil {
			res.redis = &redisStats{commands: redis1.commands - redis0.commands, cpu: redis1.cpu - redis0.cpu}
		}
	}
	res.redisErr = redisErr
	if cpuErr == nil {
		var cpu1 time.Duration
		if cpu1, cpuErr = b.serverCPU(ctx); cpuErr == nil {
			res.serverCPU, res.challengeCPU = cpu1-cpu0, cpuMid-cpu0
		}
	}
	res.serverCPUErr = cpuErr
	after, err := ecdsaRate(report, b.dev.VCEKPublicKey(), time.Second)
	if err != nil {
		return nil, err
	}
	res.ecdsaPerSec, res.cores = (before.perSec+after.perSec)/2, runtime.GOMAXPROCS(0)
	res.ecdsaCPU = (before.cpu + after.cpu) / 2
	if _, ok := b.guest.(agent.SimAzureDevice); ok {
		if res.rsaCPU, err = rsaCPU(200 * time.Millisecond); err != nil {
			return nil, err
		}
	}
	return res, nil
}

// serverCPU is the sum of the verifiers' process_cpu_seconds_total.
func (b *bench) serverCPU(ctx context.Context) (time.Duration, error) {
	var sum time.Duration
	for _, c := range b.cs {
		d, err := processCPU(ctx, c)
		if err != nil {
			return 0, err
		}
		sum += d
	}
	return sum, nil
}

// processCPU reads process_cpu_seconds_total from c's /metrics.
func processCPU(ctx context.Context, c *client.Client) (time.Duration, error) {
	u := strings.TrimRight(c.BaseURL, "/") + v1.PathMetrics
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, u, nil)
	if err != nil {
		return 0, err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return 0, fmt.Errorf("%s: %s", u, resp.Status)
	}
	sc := bufio.NewScanner(io.LimitReader(resp.Body, 16<<20))
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		v, ok := strings.CutPrefix(sc.Text(), "process_cpu_seconds_total ")
		if !ok {
			continue
		}
		s, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil || s < 0 {
			return 0, fmt.Errorf("%s: process_cpu_seconds_total %q", u, v)
		}
		return time.Duration(s * float64(time.Second)), nil
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("%s: %w", u, err)
	}
	return 0, fmt.Errorf("%s: no process_cpu_seconds_total", u)
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
				p, err := agent.Prepare(ctx, b.client(i), b.guest)
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
				_, err := b.client(i).Attest(ctx, reqs[i].Request)
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

// ecdsaBaseline is the rate of bare report-signature verifications on all
// cores, and the CPU time of one (this process's CPU time over the count:
// unlike the rate, other processes on the machine do not inflate it).
type ecdsaBaseline struct {
	perSec float64
	cpu    time.Duration
}

// ecdsaRate measures how many verifications of report's signature under
// key all cores do per second, for about d.
func ecdsaRate(report []byte, key *ecdsa.PublicKey, d time.Duration) (ecdsaBaseline, error) {
	der, err := abi.ReportToSignatureDER(report)
	if err != nil {
		return ecdsaBaseline{}, err
	}
	digest := sha512.Sum384(abi.SignedComponent(report))
	if !ecdsa.VerifyASN1(key, digest[:], der) {
		return ecdsaBaseline{}, errors.New("the simulated report's signature does not verify")
	}
	var count atomic.Int64
	var wg sync.WaitGroup
	cpu0, err := ownCPU()
	if err != nil {
		return ecdsaBaseline{}, err
	}
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
	elapsed := time.Since(start)
	cpu1, err := ownCPU()
	if err != nil {
		return ecdsaBaseline{}, err
	}
	n := count.Load()
	return ecdsaBaseline{perSec: float64(n) / elapsed.Seconds(), cpu: (cpu1 - cpu0) / time.Duration(n)}, nil
}

// rsaCPU is the CPU time of one RSA-2048 PKCS#1 v1.5 SHA-256 signature
// verification in this process, over about d on one core.
func rsaCPU(d time.Duration) (time.Duration, error) {
	key, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		return 0, err
	}
	digest := sha256.Sum256([]byte("trustgate bench"))
	sig, err := rsa.SignPKCS1v15(rand.Reader, key, crypto.SHA256, digest[:])
	if err != nil {
		return 0, err
	}
	cpu0, err := ownCPU()
	if err != nil {
		return 0, err
	}
	n := 0
	for deadline := time.Now().Add(d); time.Now().Before(deadline); n++ {
		if rsa.VerifyPKCS1v15(&key.PublicKey, crypto.SHA256, digest[:], sig) != nil {
			return 0, errors.New("RSA baseline signature does not verify")
		}
	}
	cpu1, err := ownCPU()
	if err != nil {
		return 0, err
	}
	return (cpu1 - cpu0) / time.Duration(max(n, 1)), nil
}

// ownCPU is this process's CPU time so far (user and system).
func ownCPU() (time.Duration, error) {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		return 0, fmt.Errorf("getrusage: %w", err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano()), nil
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
	if r.serverCPUErr != nil {
		fmt.Fprintf(w, "  server cpu   unknown (%v)\n", r.serverCPUErr)
		r.printRedis(w, total, 0)
		return
	}
	per := r.serverCPU / time.Duration(total)
	ratio := 0.0
	if per > 0 {
		ratio = float64(r.ecdsaCPU) / float64(per)
	}
	fmt.Fprintf(w, "  server cpu   %.3f ms per attestation, ratio %.2f (one bare ECDSA P-384 verification: %.3f ms of CPU; %.2f s of verifier CPU for %d challenges and attestations, %.2f s of it for the challenges)\n",
		float64(per.Microseconds())/1000, ratio, float64(r.ecdsaCPU.Microseconds())/1000, r.serverCPU.Seconds(), total, r.challengeCPU.Seconds())
	if r.rsaCPU > 0 {
		both := r.ecdsaCPU + r.rsaCPU
		fmt.Fprintf(w, "  server cpu   ratio %.2f against one bare ECDSA P-384 plus one RSA-2048 verification (%.3f ms of CPU, of it RSA-2048 %.3f ms: the vTPM quote's)\n",
			float64(both)/float64(max(per, 1)), float64(both.Microseconds())/1000, float64(r.rsaCPU.Microseconds())/1000)
	}
	r.printRedis(w, total, per)
}

// printRedis prints the Redis lines (bench --redis); per is the
// verifiers' CPU per attestation (0: unknown).
func (r *benchResult) printRedis(w io.Writer, total int, per time.Duration) {
	switch {
	case r.redisErr != nil:
		fmt.Fprintf(w, "  redis        unknown (%v)\n", r.redisErr)
	case r.redis != nil:
		rcpu := r.redis.cpu / time.Duration(total)
		share := "unknown"
		if per > 0 {
			share = fmt.Sprintf("%.2f", float64(rcpu)/float64(per))
		}
		fmt.Fprintf(w, "  redis        %.2f commands per attestation (INFO total_commands_processed, scripts' own included), %.3f ms of Redis CPU per attestation, %s of the verifiers' (%d commands, %.2f s of Redis CPU)\n",
			float64(r.redis.commands)/float64(total), float64(rcpu.Microseconds())/1000, share, r.redis.commands, r.redis.cpu.Seconds())
	}
	switch {
	case r.monErr != nil:
		fmt.Fprintf(w, "  redis rtt    unknown (MONITOR: %v)\n", r.monErr)
	case r.monClient+r.monScript > 0:
		fmt.Fprintf(w, "  redis rtt    %.2f client commands per attestation (MONITOR during the load: %d sent by clients, %d run by scripts)\n",
			float64(r.monClient)/float64(total), r.monClient, r.monScript)
	}
}
