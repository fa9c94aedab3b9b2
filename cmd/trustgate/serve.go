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

func cmdServe(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgFile := fs.String("config", "", "YAML config `FILE`")
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
	level, _ := cfg.SlogLevel() // Validate checked it
	log := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: level}))
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

// serveFlags defines one flag per config key (config.Keys: its name with
// dashes, its usage the key's doc comment, its default Default's), so that
// a key added to config.Config has its flag without more ado. The values
// given are returned by flag name, to be applied with Config.SetFlag on top
// of what config.Load returns (flags > environment > file > defaults).
func serveFlags(fs *flag.FlagSet) map[string]*string {
	set := map[string]*string{}
	for _, k := range config.Keys() {
		v := &flagValue{def: k.Default, isBool: k.Bool}
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
}

func (f *flagValue) String() string {
	if f == nil {
		return ""
	}
	return f.val
}
func (f *flagValue) Set(v string) error { f.val = v; return nil }
func (f *flagValue) IsBoolFlag() bool   { return f.isBool }
