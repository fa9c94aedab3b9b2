package main

import (
	"encoding/hex"
	"flag"
	"fmt"
	"strings"
)

// parseInterspersed parses flags that may stand before or after the
// positional arguments ("verify REPORT --vcek F" as well as
// "verify --vcek F REPORT") and returns the positional arguments.
func parseInterspersed(fs *flag.FlagSet, args []string) ([]string, error) {
	var pos []string
	for {
		if err := fs.Parse(args); err != nil {
			return nil, err
		}
		args = fs.Args()
		if len(args) == 0 {
			return pos, nil
		}
		if args[0] == "--" {
			return append(pos, args[1:]...), nil
		}
		pos = append(pos, args[0])
		args = args[1:]
	}
}

// hexFlag is a flag holding a byte string of exactly n bytes given in hex,
// or of min to n bytes when min is not 0.
type hexFlag struct {
	n   int
	min int
	val []byte
}

func (h *hexFlag) String() string { return hex.EncodeToString(h.val) }

func (h *hexFlag) Set(s string) error {
	b, err := hex.DecodeString(strings.TrimPrefix(strings.TrimSpace(s), "0x"))
	if err != nil {
		return fmt.Errorf("not hex: %w", err)
	}
	if h.min > 0 && len(b) >= h.min && len(b) <= h.n {
		h.val = b
		return nil
	}
	if len(b) != h.n {
		return fmt.Errorf("want %d bytes (%d hex digits), got %d bytes", h.n, 2*h.n, len(b))
	}
	h.val = b
	return nil
}
