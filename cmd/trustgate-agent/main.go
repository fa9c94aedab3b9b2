// Command trustgate-agent runs inside a confidential guest: it gets a
// challenge from the verifier, has the SEV-SNP firmware bind the nonce and
// an ephemeral key into a report, attests, and receives its resources
// (secrets and runtime configuration) encrypted to that key.
package main

import (
	"context"
	"crypto/tls"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/trustgate/trustgate/client"
	"github.com/trustgate/trustgate/internal/agent"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/resources"
	"github.com/trustgate/trustgate/internal/sim"
)

// Exit codes (SPEC): 0 success, 1 rejected, 2 usage error, 3 unavailable.
const (
	exitOK          = 0
	exitRejected    = 1
	exitUsage       = 2
	exitUnavailable = 3
)

const usage = `usage: trustgate-agent attest --verifier URL [--resource NAME]... [--out DIR] [flags]
       trustgate-agent run --verifier URL [--resource NAME]... --out DIR [flags] -- CMD [ARGS...]

attest gets a challenge, makes an ephemeral P-256 key, binds both into an
SEV-SNP report (REPORT_DATA = SHA-512(nonce || JWK thumbprint)), attests,
and releases each --resource into DIR/NAME (mode 0600, DIR 0700). Without
--resource it prints the attestation token. run does the same, then execs
CMD with TRUSTGATE_RESOURCES_DIR=DIR in its environment.

The report comes from configfs-tsm (/sys/kernel/config/tsm/report, Linux
6.7+) or /dev/sev-guest (--device), or from the simulator (--simulate; the
verifier must run --dev-simulator). --tee auto (the default) attests as
what configfs-tsm's provider says: sev_guest an SEV-SNP report, tdx_guest
a TDX quote (REPORTDATA bound the same way); --tee tdx --simulate uses the
TDX simulator. --tee nitro attests an AWS Nitro enclave: the NSM (/dev/nsm)
signs an attestation document whose nonce is REPORT_DATA; with --simulate
the Nitro simulator does. A 503 or an unreachable verifier is
retried with backoff.

Releases are signed by the verifier's token key and the agent writes
nothing it cannot verify: it trusts the keys of --verifier-jwks, or else
the verifier's /.well-known/jwks.json fetched over https:// (verified
with --ca or the system roots) or from a loopback address. http:// to
any other address needs --insecure-http (and --verifier-jwks to release).
Redirects are never followed.

Exit status: 0 done, 1 refused by the verifier (or a release that does
not verify), 2 usage error, 3 verifier, device or filesystem unavailable
(or a redirect).

flags:
`

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

// stringList is a repeatable flag.
type stringList []string

func (s *stringList) String() string     { return fmt.Sprint(*s) }
func (s *stringList) Set(v string) error { *s = append(*s, v); return nil }

// agentRun is one invocation of the agent: its flags and what is derived
// from them before any connection.
type agentRun struct {
	cmd            string // "attest" or "run"
	stdout, stderr io.Writer

	verifierURL, out, device, simMeasurement *string
	tee, tpmPath, imdsURL                    *string
	caFile, jwksFile, certFile, keyFile      *string
	names                                    stringList
	vmpl                                     *uint
	simulate, insecureHTTP                   *bool
	attempts                                 *int
	timeout                                  *time.Duration
	argv                                     []string // the command of run

	path         int                // pathTLS, pathLoopback or pathPlain
	verifierKeys jose.JSONWebKeySet // from --verifier-jwks
	bin          string             // the command of run, looked up in PATH
}

// usageError is a mistake in the command line: exit status 2.
type usageError struct{ error }

func usagef(format string, a ...any) error { return usageError{fmt.Errorf(format, a...)} }

func run(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help"):
		fmt.Fprint(stdout, usage)
		return exitOK
	case len(args) > 0 && (args[0] == "--version" || args[0] == "version"):
		fmt.Fprintf(stdout, "trustgate-agent %s\n", cli.BuildVersion())
		return exitOK
	case len(args) == 0 || (args[0] != "attest" && args[0] != "run"):
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	stdout, stderr = termSafe{stdout}, termSafe{stderr}
	r := &agentRun{cmd: args[0], stdout: stdout, stderr: stderr}
	fs := r.flagSet()
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	r.argv = fs.Args()
	return r.main()
}

func (r *agentRun) flagSet() *flag.FlagSet {
	fs := flag.NewFlagSet(r.cmd, flag.ContinueOnError)
	cli.Conventions(fs, "trustgate-agent "+r.cmd, r.stdout, r.stderr, func(w io.Writer) { fmt.Fprint(w, usage); fs.PrintDefaults() })
	r.verifierURL = fs.String("verifier", "", "verifier base `URL`, e.g. https://verifier.example:8443")
	fs.Var(&r.names, "resource", "release resource `NAME` (repeatable)")
	r.out = fs.String("out", "", "write released resources to `DIR`/NAME")
	r.device = fs.String("device", "auto", "guest device: auto, configfs or sev-guest")
	r.tpmPath = fs.String("tpm", "/dev/tpmrm0", "the vTPM of an Azure confidential VM (--tee azure-snp|azure-tdx): a TPM device, or a TPM's Unix socket (`PATH`)")
	r.imdsURL = fs.String("azure-imds-url", "http://169.254.169.254", "Azure's instance metadata service (`URL`): the VCEK from THIM (azure-snp) and the TD quote service (azure-tdx)")
	r.tee = fs.String("tee", agent.TEEAuto, "TEE: auto (configfs-tsm's provider: sev_guest or tdx_guest; with --simulate, sev-snp), sev-snp, tdx, azure-snp / azure-tdx (Azure confidential VMs through the vTPM, --tpm), or nitro (an AWS Nitro enclave, the NSM /dev/nsm)")
	r.vmpl = fs.Uint("vmpl", 0, "ask for the report at this VMPL, 0–3 (the verifier's allowed_vmpl must admit it)")
	r.simulate = fs.Bool("simulate", false, "use the simulator (SEV-SNP, or TDX with --tee tdx, Nitro with --tee nitro) instead of the guest device (the verifier must run --dev-simulator)")
	r.simMeasurement = fs.String("sim-measurement", "", "launch measurement (TDX: MRTD) of the simulated guest (48 bytes, `HEX`; default 5a…5a)")
	r.caFile = fs.String("ca", "", "trust the verifier's TLS certificate under this CA `FILE` (PEM)")
	r.jwksFile = fs.String("verifier-jwks", "", "trust releases signed by the keys of this JWKS `FILE` only (saved from the verifier's /.well-known/jwks.json)")
	r.insecureHTTP = fs.Bool("insecure-http", false, "allow http:// to a verifier that is not on loopback (anyone on the path sees and can change the exchange; releases then need --verifier-jwks)")
	r.certFile = fs.String("cert", "", "client TLS certificate `FILE` (PEM), with --key")
	r.keyFile = fs.String("key", "", "client TLS key `FILE` (PEM), with --cert")
	r.attempts = fs.Int("attempts", 5, "tries of the whole flow on 503 or network errors")
	r.timeout = fs.Duration("timeout", 2*time.Minute, "overall time limit")
	return fs
}

// main checks the command line, attests (and releases), writes what was
// released and, for run, executes the command.
func (r *agentRun) main() int {
	httpClient, dev, closeDev, err := r.prepare()
	if err != nil {
		var u usageError
		if errors.As(err, &u) {
			fmt.Fprintf(r.stderr, "trustgate-agent %s: %v\n", r.cmd, err)
			return exitUsage
		}
		fmt.Fprintf(r.stderr, "trustgate-agent: %v\n", err)
		return exitUnavailable
	}
	defer closeDev()

	ctx, cancel := context.WithTimeout(context.Background(), *r.timeout)
	defer cancel()
	got, err := agent.Fetch(ctx, agent.Options{
		Client: &client.Client{BaseURL: *r.verifierURL, HTTP: httpClient}, Device: dev, Resources: r.names, Attempts: *r.attempts,
		VerifierKeys: r.verifierKeys, FetchVerifierKeys: r.path != pathPlain,
		Logf: func(format string, a ...any) { fmt.Fprintf(r.stderr, "trustgate-agent: "+format+"\n", a...) },
	})
	if code := failure(err, r.stdout, r.stderr); code != exitOK {
		return code
	}
	if code := r.report(got); code != exitOK || r.cmd == "attest" {
		return code
	}
	abs, err := filepath.Abs(*r.out)
	if err != nil {
		abs = *r.out
	}
	env := append(os.Environ(), "TRUSTGATE_RESOURCES_DIR="+abs)
	err = syscall.Exec(r.bin, r.argv, env)
	fmt.Fprintf(r.stderr, "trustgate-agent run: exec %s: %v\n", r.argv[0], err)
	return exitUnavailable
}

// prepare checks the command line and makes the HTTP client and the
// device; closeDev releases the device. Errors are usageErrors, or the
// device's.
func (r *agentRun) prepare() (httpClient *http.Client, dev agent.Device, closeDev func(), err error) {
	if err := r.check(); err != nil {
		return nil, nil, nil, err
	}
	if httpClient, err = client.NewHTTPClient(*r.caFile, *r.certFile, *r.keyFile); err != nil {
		return nil, nil, nil, usageError{err}
	}
	if r.path == pathLoopback {
		// A loopback name (localhost) is trusted only if it resolves to
		// loopback: the dialer refuses anything else.
		tr := httpClient.Transport.(*http.Transport)
		tr.Proxy = nil
		tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, Control: loopbackOnly}).DialContext
	}
	if *r.simulate {
		m, err := sim.ParseMeasurement(*r.simMeasurement)
		if err != nil {
			return nil, nil, nil, usagef("--sim-measurement: %w", err)
		}
		if *r.tee == agent.TEENitro {
			s, err := sim.NewNitro(sim.NitroOptions{PCR0: m})
			if err != nil {
				return nil, nil, nil, err
			}
			return httpClient, agent.SimNitroDevice{Sim: s}, func() {}, nil
		}
		if *r.tee == agent.TEEAzureSNP || *r.tee == agent.TEEAzureTDX {
			var s *sim.AzureDevice
			if *r.tee == agent.TEEAzureTDX {
				s, err = sim.NewAzureTDX(sim.TDXOptions{MRTD: m}, sim.AzureOptions{})
			} else {
				s, err = sim.NewAzureSNP(sim.Options{Measurement: m}, sim.AzureOptions{})
			}
			if err != nil {
				return nil, nil, nil, err
			}
			return httpClient, agent.SimAzureDevice{Sim: s}, func() {}, nil
		}
		if *r.tee == agent.TEETDX {
			s, err := sim.NewTDX(sim.TDXOptions{MRTD: m})
			if err != nil {
				return nil, nil, nil, err
			}
			return httpClient, agent.SimTDXDevice{Sim: s}, func() {}, nil
		}
		s, err := sim.New(sim.Options{Measurement: m})
		if err != nil {
			return nil, nil, nil, err
		}
		return httpClient, agent.SimDevice{Sim: s}, func() {}, nil
	}
	if *r.tee == agent.TEENitro {
		d, err := agent.OpenNSM(agent.DefaultNSMPath)
		if err != nil {
			return nil, nil, nil, err
		}
		return httpClient, d, func() { d.Close() }, nil
	}
	if *r.tee == agent.TEEAzureSNP || *r.tee == agent.TEEAzureTDX {
		d, err := agent.OpenVTPM(*r.tpmPath, *r.tee, *r.imdsURL)
		if err != nil {
			return nil, nil, nil, err
		}
		return httpClient, d, func() { d.Close() }, nil
	}
	d, err := agent.OpenDevice(*r.device, agent.WithVMPL(*r.vmpl), agent.WithTEE(*r.tee))
	if err != nil {
		return nil, nil, nil, err
	}
	return httpClient, d, func() { d.Close() }, nil
}

// check refuses a command line that does not hold together, judges the
// path to the verifier, reads --verifier-jwks and looks up run's command,
// all before any connection. Its errors are usageErrors.
func (r *agentRun) check() error {
	switch {
	case *r.verifierURL == "":
		return usagef("--verifier is required")
	case r.cmd == "run" && len(r.argv) == 0:
		return usagef("want -- CMD [ARGS...]")
	case r.cmd == "attest" && len(r.argv) > 0:
		return usagef("unexpected arguments %q", r.argv)
	case len(r.names) > 0 && *r.out == "":
		return usagef("--resource needs --out DIR (resources are never printed)")
	case r.cmd == "run" && *r.out == "":
		return usagef("run needs --out DIR")
	case *r.simMeasurement != "" && !*r.simulate:
		return usagef("--sim-measurement needs --simulate")
	case *r.device != agent.DeviceAuto && *r.device != agent.DeviceConfigFS && *r.device != agent.DeviceSEVGuest:
		return usagef("--device %q: want auto, configfs or sev-guest", *r.device)
	case *r.vmpl > 3:
		return usagef("--vmpl %d: want 0 to 3", *r.vmpl)
	case *r.vmpl != 0 && *r.simulate:
		return usagef("--vmpl needs a guest device, not --simulate")
	case *r.tee != agent.TEEAuto && *r.tee != agent.TEESEVSNP && *r.tee != agent.TEETDX && *r.tee != agent.TEEAzureSNP && *r.tee != agent.TEEAzureTDX && *r.tee != agent.TEENitro:
		return usagef("--tee %q: want auto, sev-snp, tdx, azure-snp, azure-tdx or nitro", *r.tee)
	case (*r.tee == agent.TEEAzureSNP || *r.tee == agent.TEEAzureTDX) && (*r.vmpl != 0 || *r.device != agent.DeviceAuto):
		return usagef("--tee %s: the evidence comes from the vTPM (--tpm); --vmpl and --device do not apply", *r.tee)
	case *r.tee == agent.TEENitro && (*r.vmpl != 0 || *r.device != agent.DeviceAuto):
		return usagef("--tee nitro: documents come from the NSM (%s); --vmpl and --device are not for it", agent.DefaultNSMPath)
	case *r.tee == agent.TEETDX && *r.vmpl != 0:
		return usagef("--vmpl is SEV-SNP's; a TD has no VMPL")
	case *r.tee == agent.TEETDX && *r.device == agent.DeviceSEVGuest:
		return usagef("--tee tdx: a TD's quotes come from configfs-tsm, not --device sev-guest")
	}
	for _, n := range r.names {
		if err := resources.ValidName(n); err != nil {
			return usagef("--resource: %w", err)
		}
	}
	// Before any connection: what the path to the verifier is, and so
	// whether its JWKS may be fetched over it (SPEC "Agent trust in the
	// verifier").
	var err error
	if r.path, err = verifierPath(*r.verifierURL); err != nil {
		return usagef("--verifier: %w", err)
	}
	if r.path == pathPlain {
		if !*r.insecureHTTP {
			return usagef("--verifier %s: http:// to a verifier that is not on loopback lets anyone on the path read and change the exchange; use https:// (with --ca), or --insecure-http", *r.verifierURL)
		}
		if len(r.names) > 0 && *r.jwksFile == "" {
			return usagef("--insecure-http: a release over plain HTTP can be trusted only with the verifier's key pinned: give --verifier-jwks FILE")
		}
		fmt.Fprintf(r.stderr, "trustgate-agent: warning: --insecure-http: talking to %s in clear; the token can be read and the exchange changed on the path\n", *r.verifierURL)
	}
	if *r.jwksFile != "" {
		b, err := os.ReadFile(*r.jwksFile)
		if err != nil {
			return usagef("--verifier-jwks: %w", err)
		}
		if r.verifierKeys, err = client.ParseJWKS(b); err != nil {
			return usagef("--verifier-jwks %s: %w", *r.jwksFile, err)
		}
	}
	if r.cmd == "run" {
		if r.bin, err = exec.LookPath(r.argv[0]); err != nil {
			return usageError{err}
		}
	}
	if *r.out != "" {
		// Last, and before the release is asked for: a release is consumed once.
		if err := agent.PrepareOut(*r.out); err != nil {
			return usagef("--out: %w", err)
		}
	}
	return nil
}

// report prints the token, or writes the released resources to --out and
// says where.
func (r *agentRun) report(got *agent.Fetched) int {
	if len(r.names) == 0 {
		fmt.Fprintf(r.stdout, "AFFIRMING\ntoken: %s\n", got.Token)
		return exitOK
	}
	err := agent.WriteResources(*r.out, got.Resources)
	for _, b := range got.Resources {
		clear(b)
	}
	if err != nil {
		fmt.Fprintf(r.stderr, "trustgate-agent: writing resources: %v\n", err)
		return exitUnavailable
	}
	names := append([]string(nil), r.names...)
	sort.Strings(names)
	fmt.Fprintln(r.stdout, "AFFIRMING")
	for _, n := range names {
		fmt.Fprintf(r.stdout, "released %s → %s\n", n, filepath.Join(*r.out, n))
	}
	return exitOK
}

// The path to the verifier, as judged from its URL alone.
const (
	pathTLS      = iota // https://: TLS, verified with --ca or the system roots
	pathLoopback        // http:// to a loopback address: never leaves this machine
	pathPlain           // http:// to anything else: readable and changeable on the path
)

// verifierPath judges the path to the verifier at raw, an http:// or
// https:// base URL. Loopback is an IP literal in 127.0.0.0/8 or ::1, or
// the name localhost (then held to resolve to loopback when dialled).
func verifierPath(raw string) (int, error) {
	u, err := url.Parse(raw)
	if err != nil {
		return 0, err
	}
	if u.Host == "" || u.User != nil {
		return 0, fmt.Errorf("%q: want http(s)://HOST[:PORT][/PATH]", raw)
	}
	switch u.Scheme {
	case "https":
		return pathTLS, nil
	case "http":
		if loopbackHost(u.Hostname()) {
			return pathLoopback, nil
		}
		return pathPlain, nil
	}
	return 0, fmt.Errorf("%q: scheme %q, want http or https", raw, u.Scheme)
}

func loopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	a, err := netip.ParseAddr(h)
	return err == nil && a.Unmap().IsLoopback()
}

// loopbackOnly is a net.Dialer Control refusing any address but loopback.
func loopbackOnly(network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil || !ap.Addr().Unmap().IsLoopback() {
		return fmt.Errorf("the verifier's loopback name resolved to %s, not a loopback address", address)
	}
	return nil
}

// failure prints why err ended the flow and returns the exit status;
// exitOK for a nil err.
func failure(err error, stdout, stderr io.Writer) int {
	var apiErr *client.APIError
	var devErr *agent.DeviceError
	var tlsErr *tls.CertificateVerificationError
	var redirect *client.RedirectError
	switch {
	case err == nil:
		return exitOK
	case errors.Is(err, client.ErrUntrustedRelease):
		fmt.Fprintf(stderr, "trustgate-agent: nothing written: %v\n", err)
		return exitRejected
	case errors.As(err, &redirect):
		fmt.Fprintf(stderr, "trustgate-agent: the verifier redirected: %v\n", err)
		return exitUnavailable
	case errors.As(err, &apiErr) && apiErr.Reason != "":
		fmt.Fprintf(stdout, "REJECTED: %s\n  %s\n", apiErr.Reason, apiErr.Message)
		if attest.Reason(apiErr.Reason).Unavailable() {
			return exitUnavailable
		}
		return exitRejected
	case errors.As(err, &devErr):
		fmt.Fprintf(stderr, "trustgate-agent: %v\n", err)
		return exitUnavailable
	case errors.As(err, &tlsErr):
		fmt.Fprintf(stderr, "trustgate-agent: the verifier's TLS certificate does not verify (--ca?): %v\n", err)
		return exitUnavailable
	case agent.Retryable(err):
		fmt.Fprintf(stderr, "trustgate-agent: verifier unavailable: %v\n", err)
		return exitUnavailable
	default: // e.g. a release that does not decrypt with this key
		fmt.Fprintf(stderr, "trustgate-agent: %v\n", err)
		return exitRejected
	}
}
