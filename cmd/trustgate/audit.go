package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"strconv"

	"github.com/trustgate/trustgate/internal/admin"
	"github.com/trustgate/trustgate/internal/cli"
)

const auditUsage = `usage:
  trustgate audit verify FILE
      checks the admin audit lines in FILE, a saved log of one replica
      (slog JSON lines, mixed with any other lines): audit_seq goes up by
      one from line to line, and each audit_prev is the SHA-256 of the
      audit line before it. A line taken out, put in, edited or moved is
      reported. A new chain (audit_seq 1, empty audit_prev) is reported as
      a restart without the state directory, not as a failure.

Exit status: 0 the chain holds, 1 a gap or an edit, 2 usage error or unreadable FILE.
`

// maxAuditLine bounds one log line, in bytes.
const maxAuditLine = 1 << 20

func cmdAudit(args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 || args[0] != "verify" {
		if len(args) > 0 && (args[0] == "-h" || args[0] == "--help" || args[0] == "help") {
			fmt.Fprint(stdout, auditUsage)
			return exitOK
		}
		fmt.Fprint(stderr, auditUsage)
		return exitUsage
	}
	fs := flag.NewFlagSet("audit verify", flag.ContinueOnError)
	cli.Conventions(fs, "trustgate audit verify", stdout, stderr, func(w io.Writer) { fmt.Fprint(w, auditUsage) })
	pos, err := parseInterspersed(fs, args[1:])
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return exitOK
		}
		return exitUsage
	}
	if len(pos) != 1 {
		fmt.Fprint(stderr, "trustgate audit verify: one FILE is required\n")
		return exitUsage
	}
	f, err := os.Open(pos[0])
	if err != nil {
		fmt.Fprintf(stderr, "trustgate audit verify: %v\n", err)
		return exitUsage
	}
	defer f.Close()
	r, err := verifyAuditChain(f)
	if err != nil {
		fmt.Fprintf(stderr, "trustgate audit verify: %s: %v\n", pos[0], err)
		return exitUsage
	}
	for _, n := range r.notes {
		fmt.Fprintf(stdout, "note: %s\n", n)
	}
	for _, p := range r.problems {
		fmt.Fprintf(stdout, "BROKEN: %s\n", p)
	}
	if len(r.problems) > 0 {
		fmt.Fprintf(stdout, "%s: %d audit lines, the chain is broken (%d problems)\n", pos[0], r.lines, len(r.problems))
		return exitRejected
	}
	fmt.Fprintf(stdout, "%s: %d audit lines, the chain holds\n", pos[0], r.lines)
	return exitOK
}

type auditReport struct {
	lines           int
	notes, problems []string
}

// verifyAuditChain reads a log and checks its audit lines' chain.
func verifyAuditChain(r io.Reader) (auditReport, error) {
	var rep auditReport
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 64<<10), maxAuditLine)
	var prevSeq int64
	var prevDigest string
	n := 0
	for sc.Scan() {
		n++
		line := bytes.TrimSpace(sc.Bytes())
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var m map[string]any
		dec := json.NewDecoder(bytes.NewReader(line))
		dec.UseNumber()
		if dec.Decode(&m) != nil || m["audit"] != "admin" {
			continue
		}
		rep.lines++
		seqNum, _ := m["audit_seq"].(json.Number)
		seq, err := strconv.ParseInt(string(seqNum), 10, 64)
		prev, ok := m["audit_prev"].(string)
		if err != nil || !ok || seq < 1 {
			rep.problems = append(rep.problems, fmt.Sprintf("line %d: an audit line without a valid audit_seq and audit_prev", n))
			prevSeq, prevDigest = 0, ""
			continue
		}
		switch {
		case seq == 1 && prev == "":
			if rep.lines > 1 {
				rep.notes = append(rep.notes, fmt.Sprintf("line %d: a new chain (the replica restarted without its state directory, or another replica's lines follow)", n))
			}
		case prevSeq == 0:
			rep.notes = append(rep.notes, fmt.Sprintf("line %d: the chain is taken up at audit_seq %d (the lines before are not in the file)", n, seq))
		case seq != prevSeq+1:
			rep.problems = append(rep.problems, fmt.Sprintf("line %d: audit_seq %d follows %d: %d line(s) missing or moved", n, seq, prevSeq, seq-prevSeq-1))
		case prev != prevDigest:
			rep.problems = append(rep.problems, fmt.Sprintf("line %d: audit_prev is not the SHA-256 of the audit line before it: that line (audit_seq %d) was edited, or this one was", n, prevSeq))
		}
		prevSeq, prevDigest = seq, admin.AuditDigest(m)
	}
	if err := sc.Err(); err != nil {
		return rep, err
	}
	if rep.lines == 0 {
		rep.notes = append(rep.notes, "no audit lines")
	}
	return rep, nil
}
