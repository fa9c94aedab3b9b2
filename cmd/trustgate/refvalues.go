package main

import (
	"crypto/ecdsa"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"github.com/trustgate/trustgate/internal/atomicfile"
	"github.com/trustgate/trustgate/internal/cli"
	"github.com/trustgate/trustgate/internal/refvalues"
	"github.com/trustgate/trustgate/internal/token"
)

const refvaluesUsage = `usage:
  trustgate refvalues sign --key KEY.pem FILE
      stamps FILE with version (its version + 1) and signed_at (now), then
      writes FILE.sig: a detached compact JWS (ES256, RFC 7515 Appendix F)
      over FILE's bytes, for a verifier started with --refvalues-trust-key.
      A verifier refuses a file whose version is below one it has seen.
  trustgate refvalues sign --key KEY.pem --entry ENTRY.json
      prints one reference-values entry (JSON) as a compact JWS, the body
      of POST /admin/v1/reference-values/measurements for such a verifier;
      it carries iat (now) and a random jti: the verifier accepts it once,
      and never after a later withdrawal of its label.
  trustgate refvalues verify --trust-key PUB.pem FILE
      checks FILE.sig (and FILE) as the verifier will; exit 0 if it holds.

KEY.pem is a P-256 private key (PEM, SEC 1 or PKCS #8, owner-only);
PUB.pem its public key (PEM) or a certificate holding it.

Exit status: 0 done, 1 the signature or file does not verify, 2 usage error.
`

func cmdRefvalues(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || (args[0] != "sign" && args[0] != "verify") {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, refvaluesUsage)
			return exitOK
		}
		fmt.Fprint(stderr, refvaluesUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("refvalues "+args[0], flag.ContinueOnError)
	cli.Conventions(fs, "trustgate refvalues "+args[0], stdout, stderr, func(w io.Writer) { fmt.Fprint(w, refvaluesUsage) })
	keyFile := fs.String("key", "", "P-256 private key `FILE` (PEM, owner-only)")
	entryFile := fs.String("entry", "", "sign this entry `FILE` (JSON) for the admin API instead of a file")
	trustFile := fs.String("trust-key", "", "P-256 public key `FILE` (PEM)")
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	fail := func(code int, format string, a ...any) int {
		fmt.Fprintf(stderr, "trustgate refvalues %s: "+format+"\n", append([]any{args[0]}, a...)...)
		return code
	}
	if args[0] == "verify" {
		if *trustFile == "" || len(pos) != 1 {
			return fail(exitUsage, "--trust-key PUB.pem and one FILE are required")
		}
		trust, err := refvalues.ReadTrustKey(*trustFile)
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
		data, err := refvalues.ReadSigned(pos[0], trust)
		var se *refvalues.SignatureError
		if errors.As(err, &se) {
			return fail(exitRejected, "%s: %v", pos[0], err)
		}
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
		var s *refvalues.Set
		f, err := refvalues.FormatOf(pos[0])
		if err == nil {
			s, err = refvalues.Parse(data, f)
		}
		if err != nil {
			return fail(exitRejected, "%s: signed, but not valid reference values: %v", pos[0], err)
		}
		fmt.Fprintf(stdout, "%s: signature valid, version %d\n", pos[0], s.Version)
		return exitOK
	}
	if *keyFile == "" {
		return fail(exitUsage, "--key KEY.pem is required")
	}
	key, _, err := token.LoadOrGenerateKey(*keyFile)
	if err != nil {
		return fail(exitUsage, "--key: %v", err)
	}
	if *entryFile != "" {
		if len(pos) != 0 {
			return fail(exitUsage, "--entry takes no FILE")
		}
		b, err := readLimited(*entryFile, 64<<10)
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
		m, err := refvalues.ParseEntry(b)
		if err != nil {
			return fail(exitUsage, "%s: %v", *entryFile, err)
		}
		jws, err := refvalues.SignEntry(key, m, time.Now())
		if err != nil {
			return fail(exitUsage, "%v", err)
		}
		fmt.Fprintln(stdout, jws)
		return exitOK
	}
	if len(pos) != 1 {
		return fail(exitUsage, "one FILE is required")
	}
	s, err := signRefvaluesFile(key, pos[0], time.Now())
	if err != nil {
		return fail(exitUsage, "%v", err)
	}
	fmt.Fprintf(stderr, "trustgate refvalues sign: %s is version %d; wrote %s\n", pos[0], s.Version, pos[0]+refvalues.SigSuffix)
	return exitOK
}

// signRefvaluesFile checks that path holds valid reference values, stamps
// it with the next version and signed_at (refvalues.Stamp; the file keeps
// its mode) and writes path.sig over the stamped bytes, each atomically.
func signRefvaluesFile(key *ecdsa.PrivateKey, path string, now time.Time) (*refvalues.Set, error) {
	f, err := refvalues.FormatOf(path)
	if err != nil {
		return nil, err
	}
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	stamped, s, err := refvalues.Stamp(data, f, now)
	if err != nil {
		return nil, fmt.Errorf("%s: refusing to sign: %w", path, err)
	}
	sig, err := refvalues.SignFile(key, stamped)
	if err != nil {
		return nil, err
	}
	if err := atomicfile.Write(path, stamped, st.Mode().Perm()); err != nil {
		return nil, err
	}
	return s, atomicfile.Write(path+refvalues.SigSuffix, []byte(sig+"\n"), 0o644)
}
