package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/policy"
	"github.com/trustgate/trustgate/internal/refvalues"
)

const policyUsage = `usage: trustgate policy eval --claims FILE [--policy FILE.rego] [--data FILE]
       trustgate policy default

policy default prints the embedded default policy (Rego), e.g. to load
into an OPA that serve --policy-url asks.

Evaluates a policy offline on claims and prints the decision as JSON. The
claims file is the output of 'trustgate verify --json' or its "claims"
object. --policy defaults to the embedded default policy; --data is a
reference-values file (JSON or YAML), at data.trustgate.reference.

Exit status: 0 allow, 1 deny, 2 usage error (unreadable file, bad JSON, a
policy that does not compile, bad reference values).

flags:
`

func cmdPolicy(args []string, stdout, stderr io.Writer) int {
	if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
		fmt.Fprint(stdout, policyUsage)
		return exitOK
	}
	if len(args) == 1 && args[0] == "default" {
		fmt.Fprint(stdout, policy.DefaultModule())
		return exitOK
	}
	if len(args) == 0 || args[0] != "eval" {
		fmt.Fprint(stderr, policyUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("policy eval", flag.ContinueOnError)
	cli.Conventions(fs, "trustgate policy eval", stdout, stderr, func(w io.Writer) { fmt.Fprint(w, policyUsage); fs.PrintDefaults() })
	claimsFile := fs.String("claims", "", "claims `FILE` (JSON: verify --json output or its claims object)")
	policyFile := fs.String("policy", "", "Rego policy `FILE` (default: the embedded default policy)")
	dataFile := fs.String("data", "", "reference-values `FILE` (JSON or YAML)")
	if err := fs.Parse(args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if *claimsFile == "" || fs.NArg() != 0 {
		fmt.Fprintln(stderr, "trustgate policy eval: --claims FILE is required")
		return exitUsage
	}
	claims, err := readLimited(*claimsFile, 1<<20)
	if err == nil {
		claims, err = unwrapClaims(claims)
	}
	if err != nil {
		fmt.Fprintf(stderr, "trustgate policy eval: %s: %v\n", *claimsFile, err)
		return exitUsage
	}
	engine, err := loadPolicy(*policyFile, *dataFile, nil)
	if err != nil {
		fmt.Fprintf(stderr, "trustgate policy eval: %v\n", err)
		return exitUsage
	}
	d, err := engine.EvaluateJSON(context.Background(), claims)
	if attest.ReasonOf(err) == attest.ReasonMalformedEvidence {
		fmt.Fprintf(stderr, "trustgate policy eval: %s: %v\n", *claimsFile, attest.Detail(err))
		return exitUsage
	}
	if err == nil {
		err = d.Err()
	} else {
		fmt.Fprintf(stderr, "trustgate policy eval: %s\n", attest.Detail(err))
	}
	if err != nil && len(d.Reasons) == 0 {
		d.Reasons = []string{string(attest.ReasonOf(err))}
	}
	out := struct {
		attest.Decision
		Reason attest.Reason `json:"reason,omitempty"`
		ID     string        `json:"appraisal_policy_id"`
	}{Decision: d, Reason: attest.ReasonOf(err), ID: engine.ID()}
	enc := json.NewEncoder(stdout)
	enc.SetIndent("", "  ")
	enc.Encode(out)
	if err != nil {
		return exitRejected
	}
	return exitOK
}

// unwrapClaims returns the "claims" object of `trustgate verify --json`
// output, or b itself when it is not such output.
func unwrapClaims(b []byte) ([]byte, error) {
	var v struct {
		Verdict string          `json:"verdict"`
		Claims  json.RawMessage `json:"claims"`
	}
	if json.Unmarshal(b, &v) != nil || v.Verdict == "" {
		return b, nil
	}
	if len(v.Claims) == 0 {
		return nil, fmt.Errorf("verdict %s carries no claims", v.Verdict)
	}
	return v.Claims, nil
}

// loadPolicy builds a policy engine from a Rego file ("" = the default
// policy) and a reference-values file ("" = none).
func loadPolicy(policyFile, dataFile string, now func() time.Time) (*policy.Engine, error) {
	var module string
	if policyFile != "" {
		b, err := os.ReadFile(policyFile)
		if err != nil {
			return nil, err
		}
		module = string(b)
	}
	var ref *refvalues.Set
	if dataFile != "" {
		s, err := refvalues.Load(dataFile)
		if err != nil {
			return nil, err
		}
		ref = s
	}
	return policy.New(context.Background(), policy.Options{Module: module, ModuleName: policyFile, Reference: ref, Now: now})
}
