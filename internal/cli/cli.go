// Package cli holds the command-line conventions both binaries follow:
// --help prints the command's usage on stdout (exit 0); a wrong flag or
// value is answered on stderr in two lines, what was wrong (with the
// closest flag when one is close) and where the usage is; and Closest, the
// "did you mean" of flags and configuration keys alike.
package cli

import (
	"bytes"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
)

// Conventions sets fs up to follow the conventions. prog is how the
// command is typed ("trustgate serve"); usage writes the whole help to w
// (fs.PrintDefaults, if it calls it, writes there too). The caller returns
// exit 0 when Parse returns flag.ErrHelp and 2 on any other error.
func Conventions(fs *flag.FlagSet, prog string, stdout, stderr io.Writer, usage func(w io.Writer)) {
	msg := &bytes.Buffer{} // what the flag package says before it calls Usage
	fs.SetOutput(msg)
	fs.Usage = func() {
		said := strings.TrimSpace(msg.String())
		msg.Reset()
		if said == "" { // -h, --help
			fs.SetOutput(stdout)
			usage(stdout)
			fs.SetOutput(msg)
			return
		}
		fmt.Fprintf(stderr, "%s: %s\n", prog, explain(fs, said))
		fmt.Fprintf(stderr, "Run '%s --help' for usage.\n", prog)
	}
}

var (
	notDefined = regexp.MustCompile(`^flag provided but not defined: -+(.*)$`)
	dashed     = regexp.MustCompile(`(flag|argument): -([A-Za-z0-9])`)
)

// explain turns the flag package's message into one line: flags spelled
// with two dashes as everywhere in the docs, an unknown flag with the
// closest known one.
func explain(fs *flag.FlagSet, said string) string {
	said, _, _ = strings.Cut(said, "\n")
	if m := notDefined.FindStringSubmatch(said); m != nil {
		name := m[1]
		var names []string
		fs.VisitAll(func(f *flag.Flag) { names = append(names, f.Name) })
		if c := Closest(name, names); c != "" {
			return fmt.Sprintf("unknown flag --%s (did you mean --%s?)", name, c)
		}
		return fmt.Sprintf("unknown flag --%s", name)
	}
	said = strings.ReplaceAll(said, " for flag -", " for flag --")
	return dashed.ReplaceAllString(said, "$1: --$2")
}

// Closest returns the candidate nearest to word, or "" when none is near
// enough to be a likely typo. Dashes and underscores count as the same
// (nonce-ttl is nonce_ttl) and case is ignored.
func Closest(word string, candidates []string) string {
	norm := func(s string) string { return strings.ToLower(strings.ReplaceAll(s, "-", "_")) }
	w := norm(word)
	best, bestD := "", -1
	for _, c := range candidates {
		d := distance(w, norm(c))
		if bestD < 0 || d < bestD {
			best, bestD = c, d
		}
	}
	// A typo: a few edits, fewer than a third of the word.
	if bestD < 0 || bestD > 3 || bestD*3 > len(w)+1 {
		// ... or a prefix of a longer name (--reference for --reference-values).
		for _, c := range candidates {
			if len(w) >= 4 && strings.HasPrefix(norm(c), w) {
				return c
			}
		}
		return ""
	}
	return best
}

// distance is the edit distance of a and b (bytes): insertions, deletions,
// substitutions and transpositions of neighbours ("vcke" is one from
// "vcek").
func distance(a, b string) int {
	rows := make([][]int, len(a)+1)
	for i := range rows {
		rows[i] = make([]int, len(b)+1)
		rows[i][0] = i
	}
	for j := range rows[0] {
		rows[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			rows[i][j] = min(rows[i-1][j]+1, rows[i][j-1]+1, rows[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				rows[i][j] = min(rows[i][j], rows[i-2][j-2]+1)
			}
		}
	}
	return rows[len(a)][len(b)]
}
