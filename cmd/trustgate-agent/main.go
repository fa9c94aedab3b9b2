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
verifier must run --dev-simulator). A 503 or an unreachable verifier is
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

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "attest" && args[0] != "run") {
		fmt.Fprint(stderr, usage)
		return exitUsage
	}
	cmd := args[0]
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	verifierURL := fs.String("verifier", "", "verifier base `URL`, e.g. https://verifier.example:8443")
	var names stringList
	fs.Var(&names, "resource", "release resource `NAME` (repeatable)")
	out := fs.String("out", "", "write released resources to `DIR`/NAME")
	device := fs.String("device", "auto", "guest device: auto, configfs or sev-guest")
	vmpl := fs.Uint("vmpl", 0, "ask for the report at this VMPL, 0–3 (the verifier's allowed_vmpl must admit it)")
	simulate := fs.Bool("simulate", false, "use the SEV-SNP simulator instead of the guest device (the verifier must run --dev-simulator)")
	simMeasurement := fs.String("sim-measurement", "", "launch measurement of the simulated guest (48 bytes, `HEX`; default 5a…5a)")
	caFile := fs.String("ca", "", "trust the verifier's TLS certificate under this CA `FILE` (PEM)")
	jwksFile := fs.String("verifier-jwks", "", "trust releases signed by the keys of this JWKS `FILE` only (saved from the verifier's /.well-known/jwks.json)")
	insecureHTTP := fs.Bool("insecure-http", false, "allow http:// to a verifier that is not on loopback (anyone on the path sees and can change the exchange; releases then need --verifier-jwks)")
	certFile := fs.String("cert", "", "client TLS certificate `FILE` (PEM), with --key")
	keyFile := fs.String("key", "", "client TLS key `FILE` (PEM), with --cert")
	attempts := fs.Int("attempts", 5, "tries of the whole flow on 503 or network errors")
	timeout := fs.Duration("timeout", 2*time.Minute, "overall time limit")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	usageErr := func(format string, a ...any) int {
		fmt.Fprintf(stderr, "trustgate-agent %s: "+format+"\n", append([]any{cmd}, a...)...)
		return exitUsage
	}
	argv := fs.Args()
	switch {
	case *verifierURL == "":
		return usageErr("--verifier is required")
	case cmd == "run" && len(argv) == 0:
		return usageErr("want -- CMD [ARGS...]")
	case cmd == "attest" && len(argv) > 0:
		return usageErr("unexpected arguments %q", argv)
	case len(names) > 0 && *out == "":
		return usageErr("--resource needs --out DIR (resources are never printed)")
	case cmd == "run" && *out == "":
		return usageErr("run needs --out DIR")
	case *simMeasurement != "" && !*simulate:
		return usageErr("--sim-measurement needs --simulate")
	case *device != agent.DeviceAuto && *device != agent.DeviceConfigFS && *device != agent.DeviceSEVGuest:
		return usageErr("--device %q: want auto, configfs or sev-guest", *device)
	case *vmpl > 3:
		return usageErr("--vmpl %d: want 0 to 3", *vmpl)
	case *vmpl != 0 && *simulate:
		return usageErr("--vmpl needs a guest device, not --simulate")
	}
	for _, n := range names {
		if err := resources.ValidName(n); err != nil {
			return usageErr("--resource: %v", err)
		}
	}
	// Before any connection: what the path to the verifier is, and so
	// whether its JWKS may be fetched over it (SPEC "Agent trust in the
	// verifier").
	path, err := verifierPath(*verifierURL)
	if err != nil {
		return usageErr("--verifier: %v", err)
	}
	if path == pathPlain {
		if !*insecureHTTP {
			return usageErr("--verifier %s: http:// to a verifier that is not on loopback lets anyone on the path read and change the exchange; use https:// (with --ca), or --insecure-http", *verifierURL)
		}
		if len(names) > 0 && *jwksFile == "" {
			return usageErr("--insecure-http: a release over plain HTTP can be trusted only with the verifier's key pinned: give --verifier-jwks FILE")
		}
		fmt.Fprintf(stderr, "trustgate-agent: warning: --insecure-http: talking to %s in clear; the token can be read and the exchange changed on the path\n", *verifierURL)
	}
	var verifierKeys jose.JSONWebKeySet
	if *jwksFile != "" {
		b, err := os.ReadFile(*jwksFile)
		if err != nil {
			return usageErr("--verifier-jwks: %v", err)
		}
		if verifierKeys, err = client.ParseJWKS(b); err != nil {
			return usageErr("--verifier-jwks %s: %v", *jwksFile, err)
		}
	}
	var bin string
	if cmd == "run" {
		var err error
		if bin, err = exec.LookPath(argv[0]); err != nil {
			return usageErr("%v", err)
		}
	}
	httpClient, err := client.NewHTTPClient(*caFile, *certFile, *keyFile)
	if err != nil {
		return usageErr("%v", err)
	}
	if path == pathLoopback {
		// A loopback name (localhost) is trusted only if it resolves to
		// loopback: the dialer refuses anything else.
		tr := httpClient.Transport.(*http.Transport)
		tr.Proxy = nil
		tr.DialContext = (&net.Dialer{Timeout: 30 * time.Second, Control: loopbackOnly}).DialContext
	}

	var dev agent.Device
	if *simulate {
		m, err := sim.ParseMeasurement(*simMeasurement)
		if err != nil {
			return usageErr("--sim-measurement: %v", err)
		}
		s, err := sim.New(sim.Options{Measurement: m})
		if err != nil {
			fmt.Fprintf(stderr, "trustgate-agent: %v\n", err)
			return exitUnavailable
		}
		dev = agent.SimDevice{Sim: s}
	} else {
		d, err := agent.OpenDevice(*device, agent.WithVMPL(*vmpl))
		if err != nil {
			fmt.Fprintf(stderr, "trustgate-agent: %v\n", err)
			return exitUnavailable
		}
		defer d.Close()
		dev = d
	}

	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	got, err := agent.Fetch(ctx, agent.Options{
		Client: &client.Client{BaseURL: *verifierURL, HTTP: httpClient}, Device: dev, Resources: names, Attempts: *attempts,
		VerifierKeys: verifierKeys, FetchVerifierKeys: path != pathPlain,
		Logf: func(format string, a ...any) { fmt.Fprintf(stderr, "trustgate-agent: "+format+"\n", a...) },
	})
	if code := failure(err, stdout, stderr); code != exitOK {
		return code
	}
	if len(names) == 0 {
		fmt.Fprintf(stdout, "AFFIRMING\ntoken: %s\n", got.Token)
	} else {
		err := agent.WriteResources(*out, got.Resources)
		for _, b := range got.Resources {
			clear(b)
		}
		if err != nil {
			fmt.Fprintf(stderr, "trustgate-agent: writing resources: %v\n", err)
			return exitUnavailable
		}
		sort.Strings(names)
		fmt.Fprintln(stdout, "AFFIRMING")
		for _, n := range names {
			fmt.Fprintf(stdout, "released %s → %s\n", n, filepath.Join(*out, n))
		}
	}
	if cmd == "attest" {
		return exitOK
	}
	abs, err := filepath.Abs(*out)
	if err != nil {
		abs = *out
	}
	env := append(os.Environ(), "TRUSTGATE_RESOURCES_DIR="+abs)
	err = syscall.Exec(bin, argv, env)
	fmt.Fprintf(stderr, "trustgate-agent run: exec %s: %v\n", argv[0], err)
	return exitUnavailable
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
