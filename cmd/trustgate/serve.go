package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime/debug"
	"syscall"

	"github.com/trustgate/trustgate/internal/app"
	"github.com/trustgate/trustgate/internal/config"
)

// serveFlags are the settings `serve` takes as flags (each also a config
// key and a TRUSTGATE_ variable).
var serveFlags = []struct{ name, usage string }{
	{"listen", "listen `ADDR` (default 127.0.0.1:8080)"},
	{"reference-values", "reference-values `FILE` (JSON or YAML), reloaded when it changes"},
	{"policy", "Rego policy `FILE` (default: the embedded default policy), reloaded when it changes"},
	{"tls-cert", "serve TLS with this certificate `FILE` (PEM; with --tls-key)"},
	{"tls-key", "TLS private key `FILE` (PEM)"},
	{"client-ca", "admit only agents with a client certificate under this CA `FILE` (PEM; needs TLS)"},
	{"resources", "secret store `DIR`: one file per resource, owner-only permissions (default: none, nothing is released)"},
	{"nonce-ttl", "challenge lifetime (default 120s)"},
	{"nonce-key-file", "nonce MAC key `FILE` (default: generated at start)"},
	{"token-key-file", "ES256 token key `FILE`, PEM (default: generated at start)"},
	{"token-lifetime", "token lifetime (default 60s)"},
	{"kds-url", "AMD KDS base `URL`"},
	{"offline", "never contact the KDS; certificates and CRLs from the evidence or 'trustgate certs import' (true/false)"},
	{"redis", "Redis `URL` shared by replicas (redis://, rediss://, unix://, redis+sentinel://[:PASSWORD@]HOST:PORT[,...]/MASTER[/DB], redis+cluster://HOST:PORT[,...]): single-use records (nonces, token ids) and the certificate cache"},
	{"store-timeout", "longest wait for the single-use store (Redis); no answer is 503 store_unavailable (default 1s)"},
	{"cert-cache-dir", "AMD certificate disk cache `DIR` (default: the user cache dir's trustgate/certs)"},
	{"kds-rate", "least time between two KDS requests of one kind (default 10s)"},
	{"cert-fetch-wait", "answer 503 vcek_unavailable (Retry-After) after waiting this long for an AMD certificate fetch, which goes on in the background (default 10s)"},
	{"cert-max-staleness", "serve a cached VCEK this long past its refresh point while the KDS is down (default 168h)"},
	{"crl-grace", "use an AMD CRL this long past its nextUpdate while the KDS is down (default 24h)"},
	{"warm-chips", "fetch the VCEKs of the chips in `FILE` (PRODUCT:HWID:TCB per line) at start"},
	{"reload-interval", "how often policy files are checked (default 2s)"},
	{"shutdown-delay", "after SIGTERM, fail /readyz and serve on this long before closing the listener; 0: close at once (default 5s)"},
	{"shutdown-timeout", "graceful shutdown limit for requests in flight, after the delay (default 10s)"},
	{"dev-simulator", "trust the simulator's AMD root; loopback only (true/false)"},
	{"admin-listen", "serve the admin API (reference values) on this `ADDR` (default: off); TLS with --tls-cert"},
	{"admin-token-file", "admin API bearer token `FILE` (owner-only, at least 16 bytes)"},
	{"admin-client-ca", "admit admin clients with a certificate under this CA `FILE` (PEM; needs TLS)"},
	{"refvalues-trust-key", "accept only reference values signed by this P-256 public key `FILE` (PEM): FILE.sig beside the file, JWS entries on the admin API"},
	{"policy-url", "ask this external policy engine `URL` (OPA REST data API) instead of the embedded one"},
	{"policy-timeout", "longest wait for the external policy engine; no answer is 503 policy_unavailable (default 2s)"},
	{"launch-key-file", "launch pseudonym key `FILE` (owner-only; created when absent; share it between replicas; default: generated at start)"},
	{"launch-retention", "keep a launch record this long after its last attestation (default 24h)"},
}

func cmdServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgFile := fs.String("config", "", "YAML config `FILE`")
	pprofListen := fs.String("pprof-listen", "", "serve Go's pprof debug endpoints (/debug/pprof/) on this loopback `ADDR` (default: off; not a config key)")
	set := map[string]*string{}
	for _, f := range serveFlags {
		set[f.name] = new(string)
		fs.Func(f.name, f.usage, func(v string) error { *set[f.name] = v; return nil })
	}
	// Boolean flags may be given bare.
	for _, b := range []string{"offline", "dev-simulator"} {
		name := b
		fs.Lookup(name).Value = boolFunc(func(v string) { *set[name] = v })
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	cfg, err := config.Load(*cfgFile, os.Environ())
	if err != nil {
		fmt.Fprintf(stderr, "trustgate serve: %v\n", err)
		return exitUsage
	}
	var flagErrs []error
	fs.Visit(func(f *flag.Flag) {
		if f.Name == "config" || f.Name == "pprof-listen" {
			return
		}
		if err := cfg.SetFlag(f.Name, *set[f.Name]); err != nil {
			flagErrs = append(flagErrs, fmt.Errorf("--%s: %w", f.Name, err))
		}
	})
	if err := errors.Join(append(flagErrs, cfg.Validate())...); err != nil {
		fmt.Fprintf(stderr, "trustgate serve: invalid configuration:\n%v\n", err)
		return exitUsage
	}
	pprofLn, err := listenPprof(*pprofListen)
	if err != nil {
		fmt.Fprintf(stderr, "trustgate serve: --pprof-listen: %v\n", err)
		return exitUsage
	}
	if pprofLn != nil {
		defer pprofLn.Close()
	}
	setServeGC()
	log := slog.New(slog.NewJSONHandler(stderr, nil))
	app.RouteLibraryLogs(log) // from here on, stderr carries JSON lines only
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts the graceful shutdown; a second one ends
	// the process at once (the signals' default action).
	context.AfterFunc(ctx, stop)
	a, err := app.New(ctx, cfg, app.Deps{Logger: log})
	if err != nil {
		fmt.Fprintf(stderr, "trustgate serve: %v\n", err)
		return exitUsage
	}
	defer a.Close()
	ln, err := net.Listen("tcp", cfg.Listen)
	if err != nil {
		fmt.Fprintf(stderr, "trustgate serve: %v\n", err)
		return exitUnavailable
	}
	if pprofLn != nil {
		go servePprof(pprofLn)
		log.Warn("pprof debug endpoints served", "addr", pprofLn.Addr().String())
	}
	adminDone := make(chan error, 1)
	if cfg.AdminListen != "" {
		aln, err := net.Listen("tcp", cfg.AdminListen)
		if err != nil {
			ln.Close()
			fmt.Fprintf(stderr, "trustgate serve: admin_listen: %v\n", err)
			return exitUnavailable
		}
		go func() { adminDone <- a.ServeAdmin(ctx, aln) }()
	} else {
		adminDone <- nil
	}
	err = a.Serve(ctx, ln)
	stop() // the admin API stops with the API
	if aerr := <-adminDone; err == nil && aerr != nil {
		err = fmt.Errorf("admin API: %w", aerr)
	}
	if err != nil {
		fmt.Fprintf(stderr, "trustgate serve: %v\n", err)
		return exitUnavailable
	}
	return exitOK
}

// serveGCPercent is serve's GOGC unless the environment sets one: each
// attestation allocates tens of KB that die with it (the 7 KB body, its
// decoded evidence, the token), so the default of 100 collects often over
// a small live heap; 400 spent about 5 % less CPU per attestation under
// `trustgate bench -n 14000 -c 8`, for a heap up to five times the live
// one instead of twice (README "Performance").
const serveGCPercent = 400

func setServeGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
}

// boolFunc is a flag.Value that may be given without a value.
type boolFunc func(string)

func (b boolFunc) String() string     { return "" }
func (b boolFunc) Set(v string) error { b(v); return nil }
func (b boolFunc) IsBoolFlag() bool   { return true }
