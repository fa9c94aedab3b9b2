// Command trustgate is the verifier side of trustgate: it serves the
// attestation HTTP API (serve), verifies single SEV-SNP reports (verify),
// appraises claims with a policy (policy eval), computes expected launch
// measurements (measure), fetches and imports AMD certificates (certs),
// load-tests a verifier (bench) and shows the whole flow (demo).
package main

import (
	"fmt"
	"io"
	"os"

	"github.com/trustgate/trustgate/internal/cli"
)

// Exit codes shared by every subcommand (SPEC "Programs").
const (
	exitOK          = 0 // success / verified
	exitRejected    = 1 // evidence did not pass
	exitUsage       = 2 // bad flag, unreadable file
	exitUnavailable = 3 // a dependency (KDS, store) is unavailable
)

type command struct {
	name, summary string
	run           func(args []string, stdout, stderr io.Writer) int
}

func commands() []command {
	return []command{
		{"demo", "run the whole attestation flow in one process, step by step", cmdDemo},
		{"policy", "print the default policy (policy default); evaluate a policy offline (policy eval)", cmdPolicy},
		{"serve", "serve the attestation HTTP API", cmdServe},
		{"verify", "verify one SEV-SNP report or Intel TDX quote (and appraise it with --policy/--data)", cmdVerify},
		{"measure", "compute the expected SEV-SNP launch measurement", cmdMeasure},
		{"certs", "fetch and import AMD certificates and Intel collateral for offline use", cmdCerts},
		{"bench", "load-test a verifier serving --dev-simulator", cmdBench},
		{"refvalues", "sign reference values (refvalues sign) and check signatures (refvalues verify)", cmdRefvalues},
		{"fleet", "follow one guest's launch by its pseudonym (fleet lookup)", cmdFleet},
		{"audit", "check a saved log's admin audit chain for gaps and edits (audit verify)", cmdAudit},
	}
}

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

func run(args []string, stdout, stderr io.Writer) int {
	switch {
	case len(args) == 0:
		usage(stderr)
		return exitUsage
	case args[0] == "-h" || args[0] == "--help" || args[0] == "help":
		usage(stdout)
		return exitOK
	case args[0] == "--version" || args[0] == "-version" || args[0] == "version":
		fmt.Fprintf(stdout, "trustgate %s\n", cli.BuildVersion())
		return exitOK
	}
	for _, c := range commands() {
		if c.name == args[0] {
			return c.run(args[1:], stdout, stderr)
		}
	}
	var names []string
	for _, c := range commands() {
		names = append(names, c.name)
	}
	if c := cli.Closest(args[0], names); c != "" {
		fmt.Fprintf(stderr, "trustgate: unknown command %q (did you mean %s?)\n", args[0], c)
	} else {
		fmt.Fprintf(stderr, "trustgate: unknown command %q\n", args[0])
	}
	fmt.Fprintln(stderr, "Run 'trustgate --help' for usage.")
	return exitUsage
}

func usage(w io.Writer) {
	fmt.Fprintln(w, "usage: trustgate <command> [flags]\n\nAn attestation verifier and secret broker for confidential VMs (AMD SEV-SNP, Intel TDX).\n\ncommands:")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-9s %s\n", c.name, c.summary)
	}
	fmt.Fprintln(w, "\n'trustgate COMMAND --help' describes a command; 'trustgate --version' prints the version.\nExit status: 0 success, 1 refused, 2 usage or configuration error, 3 a dependency unavailable.")
}
