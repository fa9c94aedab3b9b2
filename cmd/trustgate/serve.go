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
	"strings"
	"syscall"

	"github.com/trustgate/trustgate/internal/app"
	"github.com/trustgate/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/config"
	"github.com/trustgate/trustgate/internal/policy"
)

func cmdServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	cli.Conventions(fs, "trustgate serve", stdout, stderr, func(w io.Writer) { serveUsage(w, fs) })
	cfgFile := fs.String("config", "", "the YAML configuration `FILE`; its keys are the flags' names with _ for - (nonce_ttl: 2m)")
	pprofListen := fs.String("pprof-listen", "", "serve Go's pprof debug endpoints (/debug/pprof/) on this loopback `ADDR` (default: off; not a config key)")
	set := serveFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	cfg, err := config.Load(*cfgFile, os.Environ())
	if err != nil {
		fmt.Fprintf(stderr, "trustgate serve: invalid configuration:\n%v\n", err)
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
	level, _ := cfg.SlogLevel() // Validate checked it
	log := slog.New(app.NewLogHandler(stderr, level))
	app.RouteLibraryLogs(log) // from here on, stderr carries JSON lines only
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// The first signal starts the graceful shutdown; a second one ends
	// the process at once (the signals' default action).
	context.AfterFunc(ctx, stop)
	a, err := app.New(ctx, cfg, app.Deps{Logger: log})
	if err != nil {
		var fe *policy.FileError
		if errors.As(err, &fe) && len(fe.Problems) > 0 {
			// Every problem, each where it is, as for the configuration.
			fmt.Fprintf(stderr, "trustgate serve: invalid %s file (%d errors):\n", fe.File, len(fe.Problems))
			for _, p := range fe.Problems {
				fmt.Fprintf(stderr, "%s: %s\n", fe.Path, p)
			}
			return exitUsage
		}
		fmt.Fprintf(stderr, "trustgate serve: %v\n", err)
		return exitUsage
	}
	defer a.Close()
	log.Info("trustgate serve starting", "version", app.Version, "listen", cfg.Listen)
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
// one instead of twice (docs/performance.md).
const serveGCPercent = 400

func setServeGC() {
	if os.Getenv("GOGC") == "" {
		debug.SetGCPercent(serveGCPercent)
	}
}

// serveGroups sorts serve's settings for its help, by what an operator
// sets together. A key of none of them (a new one) is listed under "Other
// settings", so that every key is in the help.
var serveGroups = []struct {
	title string
	keys  []string
}{
	{"Listening and TLS", []string{"listen", "tls_cert", "tls_key", "client_ca"}},
	{"What is approved and released", []string{"reference_values", "policy", "resources", "refvalues_trust_key", "reload_interval", "policy_url", "policy_timeout"}},
	{"Keys, nonces and tokens", []string{"nonce_key_file", "token_key_file", "launch_key_file", "nonce_ttl", "token_lifetime", "launch_retention"}},
	{"Shared store (replicas)", []string{"redis", "store_timeout"}},
	{"AMD and Intel certificates", []string{"offline", "kds_url", "kds_rate", "pcs_url", "pcs_root_crl_url", "cert_cache_dir", "cert_fetch_wait", "cert_max_staleness", "crl_grace", "warm_chips"}},
	{"Admin API", []string{"admin_listen", "admin_token_file", "admin_client_ca"}},
	{"Shutdown", []string{"shutdown_delay", "shutdown_timeout"}},
	{"Development", []string{"dev_simulator"}},
}

// serveUsage is serve --help: what serve does, how settings combine, then
// every flag by group with the form of its value and its default.
func serveUsage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprint(w, `usage: trustgate serve [--config FILE] [flags]

Serves the attestation API (and, with --admin-listen, the admin API). With no flags it listens on
127.0.0.1:8080 with the default policy and no reference values: every guest is refused until builds
are approved. Every flag below is also a key of the --config file (--nonce-ttl is nonce_ttl) and an
environment variable (TRUSTGATE_NONCE_TTL); flags win over the environment, which wins over the file.
The whole configuration is checked before anything starts, and every problem is listed at once.
Durations are written 30s, 5m or 1h30m. docs/operations.md explains each setting.
`)
	printFlag := func(name string) {
		f := fs.Lookup(name)
		if f == nil {
			return
		}
		form, usage := flag.UnquoteUsage(f)
		if v, ok := f.Value.(*flagValue); ok {
			form = v.form
		}
		line := "  --" + f.Name
		if form != "" {
			line += " " + form
		}
		if f.DefValue != "" && f.DefValue != "false" {
			usage = strings.TrimSuffix(usage, ".") + " (default " + f.DefValue + ")"
		}
		fmt.Fprintf(w, "%s\n        %s\n", line, usage)
	}
	listed := map[string]bool{"config": true, "pprof-listen": true}
	fmt.Fprintln(w)
	printFlag("config")
	for _, g := range serveGroups {
		fmt.Fprintf(w, "\n%s:\n", g.title)
		for _, k := range g.keys {
			name := strings.ReplaceAll(k, "_", "-")
			listed[name] = true
			printFlag(name)
			if k == "dev_simulator" {
				listed["pprof-listen"] = true
				printFlag("pprof-listen")
			}
		}
	}
	var other []string
	fs.VisitAll(func(f *flag.Flag) {
		if !listed[f.Name] {
			other = append(other, f.Name)
		}
	})
	if len(other) > 0 {
		fmt.Fprintln(w, "\nOther settings:")
		for _, name := range other {
			printFlag(name)
		}
	}
}

// serveFlags defines one flag per config key (config.Keys: its name with
// dashes, its usage the key's doc comment, its default Default's), so that
// a key added to config.Config has its flag without more ado. The values
// given are returned by flag name, to be applied with Config.SetFlag on top
// of what config.Load returns (flags > environment > file > defaults).
func serveFlags(fs *flag.FlagSet) map[string]*string {
	set := map[string]*string{}
	for _, k := range config.Keys() {
		v := &flagValue{def: k.Default, isBool: k.Bool, form: valueForm(k)}
		set[k.Flag()] = &v.val
		usage := k.Usage
		if k.Bool {
			usage += " (true/false)"
		}
		fs.Var(v, k.Flag(), usage)
		fs.Lookup(k.Flag()).DefValue = k.Default
	}
	return set
}

// flagValue holds a flag's text as given; config.SetFlag parses it.
// Boolean ones may be given bare.
type flagValue struct {
	val, def string
	isBool   bool
	form     string // how the value is written in the help: FILE, DURATION, ...
}

// valueForm names what a key's value is, for the help: from its type
// (durations, true/false) and, for strings, from its name.
func valueForm(k config.Key) string {
	switch {
	case k.Bool:
		return ""
	case k.Duration:
		return "DURATION"
	case k.Name == "listen" || strings.HasSuffix(k.Name, "_listen"):
		return "ADDR"
	case k.Name == "redis" || strings.HasSuffix(k.Name, "_url"):
		return "URL"
	case strings.HasSuffix(k.Name, "_dir") || k.Name == "resources":
		return "DIR"
	case strings.HasSuffix(k.Name, "_file") || strings.HasSuffix(k.Name, "_cert") || strings.HasSuffix(k.Name, "_key") ||
		strings.HasSuffix(k.Name, "_ca") || k.Name == "policy" || k.Name == "reference_values" || k.Name == "warm_chips":
		return "FILE"
	}
	return "VALUE"
}

func (f *flagValue) String() string {
	if f == nil {
		return ""
	}
	return f.val
}
func (f *flagValue) Set(v string) error { f.val = v; return nil }
func (f *flagValue) IsBoolFlag() bool   { return f.isBool }
