package main

import (
	"fmt"
	"io"
	"unicode"
	"unicode/utf8"
)

// termSafe writes what the agent prints with every control character
// except newline and tab, and every byte that is not UTF-8, escaped (\x1b,
// \u009b): the verifier's answers (reasons, messages, errors that quote its
// body) reach a terminal, and an escape sequence in them must not drive it.
type termSafe struct{ w io.Writer }

func (t termSafe) Write(p []byte) (int, error) {
	out := make([]byte, 0, len(p))
	for i := 0; i < len(p); {
		r, n := utf8.DecodeRune(p[i:])
		switch {
		case r == utf8.RuneError && n <= 1:
			out = fmt.Appendf(out, `\x%02x`, p[i])
		case r == '\n' || r == '\t' || (unicode.IsPrint(r) && r != '\u2028' && r != '\u2029'):
			out = append(out, p[i:i+n]...)
		case r < 0x100:
			out = fmt.Appendf(out, `\x%02x`, r)
		default:
			out = fmt.Appendf(out, `\u%04x`, r)
		}
		i += n
	}
	if _, err := t.w.Write(out); err != nil {
		return 0, err
	}
	return len(p), nil
}
