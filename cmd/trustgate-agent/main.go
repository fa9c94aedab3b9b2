// Command trustgate-agent runs inside a confidential guest: it gets a
// challenge from the verifier, has the SEV-SNP firmware bind the nonce and
// an ephemeral key into a report, and attests.
//
// This first version attests with the simulator (--simulate); the real
// guest devices and secret release follow.
package main

import (
	"context"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/trustgate/trustgate/client"
	"github.com/trustgate/trustgate/internal/agent"
	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/sim"
)

const (
	exitOK          = 0
	exitRejected    = 1
	exitUsage       = 2
	exitUnavailable = 3
)

func main() { os.Exit(run(os.Args[1:], os.Stdout, os.Stderr)) }

func run(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "attest" {
		fmt.Fprintln(stderr, "usage: trustgate-agent attest --verifier URL --simulate [--sim-measurement HEX]")
		return exitUsage
	}
	fs := flag.NewFlagSet("attest", flag.ContinueOnError)
	fs.SetOutput(stderr)
	verifierURL := fs.String("verifier", "", "verifier base `URL`, e.g. http://127.0.0.1:8080")
	simulate := fs.Bool("simulate", false, "use the SEV-SNP simulator instead of the guest device (the verifier must run --dev-simulator)")
	simMeasurement := fs.String("sim-measurement", "", "launch measurement of the simulated guest (48 bytes, `HEX`; default 5a…5a)")
	timeout := fs.Duration("timeout", 30*time.Second, "overall time limit")
	if err := fs.Parse(args[1:]); err != nil {
		return exitUsage
	}
	if *verifierURL == "" {
		fmt.Fprintln(stderr, "trustgate-agent: --verifier is required")
		return exitUsage
	}
	if !*simulate {
		fmt.Fprintln(stderr, "trustgate-agent: this version attests only with --simulate; guest device support comes with secret release")
		return exitUsage
	}
	opts := sim.Options{}
	if *simMeasurement != "" {
		b, err := hex.DecodeString(*simMeasurement)
		if err != nil || len(b) != 48 {
			fmt.Fprintln(stderr, "trustgate-agent: --sim-measurement must be 48 bytes of hex")
			return exitUsage
		}
		m := [48]byte(b)
		opts.Measurement = &m
	}
	dev, err := sim.New(opts)
	if err != nil {
		fmt.Fprintf(stderr, "trustgate-agent: %v\n", err)
		return exitUnavailable
	}
	ctx, cancel := context.WithTimeout(context.Background(), *timeout)
	defer cancel()
	res, err := agent.Attest(ctx, &client.Client{BaseURL: *verifierURL}, agent.SimDevice{Sim: dev})
	var apiErr *client.APIError
	switch {
	case err == nil:
		fmt.Fprintf(stdout, "AFFIRMING\ntoken: %s\n", res.Token)
		return exitOK
	case errors.As(err, &apiErr) && apiErr.Reason != "":
		fmt.Fprintf(stdout, "REJECTED: %s\n  %s\n", apiErr.Reason, apiErr.Message)
		if attest.Reason(apiErr.Reason).Unavailable() {
			return exitUnavailable
		}
		return exitRejected
	default:
		fmt.Fprintf(stderr, "trustgate-agent: %v\n", err)
		return exitUnavailable
	}
}
