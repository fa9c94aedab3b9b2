package cli

import (
	"bytes"
	"errors"
	"flag"
	"io"
	"strings"
	"testing"
)

func TestClosest(t *testing.T) {
	keys := []string{"listen", "nonce_ttl", "nonce_key_file", "reference_values", "redis", "tls_cert", "tls_key"}
	for word, want := range map[string]string{
		"listn": "listen", "nonce-ttl": "nonce_ttl", "NONCE_TTL": "nonce_ttl", "refrence_values": "reference_values",
		"reference": "reference_values", "tls_crt": "tls_cert", "nocne_ttl": "nonce_ttl", "zzz": "", "kds_url": "", "x": "",
	} {
		if got := Closest(word, keys); got != want {
			t.Errorf("Closest(%q) = %q, want %q", word, got, want)
		}
	}
}

func parse(args ...string) (err error, stdout, stderr string) {
	var out, errOut bytes.Buffer
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.String("listen", "", "the `ADDR`")
	fs.Duration("nonce-ttl", 0, "how long")
	Conventions(fs, "trustgate serve", &out, &errOut, func(w io.Writer) {
		io.WriteString(w, "usage: trustgate serve [flags]\n")
		fs.PrintDefaults()
	})
	err = fs.Parse(args)
	return err, out.String(), errOut.String()
}

// --help is the whole usage on stdout; a wrong flag is two lines on
// stderr with the closest flag and the pointer to --help.
func TestConventions(t *testing.T) {
	err, out, errOut := parse("--help")
	if !errors.Is(err, flag.ErrHelp) || !strings.Contains(out, "usage: trustgate serve") || !strings.Contains(out, "-listen ADDR") || errOut != "" {
		t.Errorf("--help: err %v\nstdout %q\nstderr %q", err, out, errOut)
	}
	for args, want := range map[string]string{
		"--listn=x":          "trustgate serve: unknown flag --listn (did you mean --listen?)\nRun 'trustgate serve --help' for usage.\n",
		"--bogus":            "trustgate serve: unknown flag --bogus\nRun 'trustgate serve --help' for usage.\n",
		"--nonce-ttl=2 mins": "trustgate serve: invalid value \"2 mins\" for flag --nonce-ttl: parse error\nRun 'trustgate serve --help' for usage.\n",
		"--listen":           "trustgate serve: flag needs an argument: --listen\nRun 'trustgate serve --help' for usage.\n",
	} {
		err, out, errOut := parse(args)
		if err == nil || errors.Is(err, flag.ErrHelp) || out != "" || errOut != want {
			t.Errorf("%s: err %v\nstdout %q\nstderr %q\nwant   %q", args, err, out, errOut, want)
		}
	}
}
