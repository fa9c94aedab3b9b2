package admin

import (
	"bufio"
	"bytes"
	"fmt"
	"regexp"
	"strings"
)

// Token is one admin bearer token and the operator it names ("" for a
// single bare token).
type Token struct {
	Name   string
	Secret []byte
}

var tokenName = regexp.MustCompile(`^[A-Za-z0-9_.@-]{1,64}$`)

// ParseTokens reads the content of admin_token_file: either one bare
// token (who is then "token:sha256:" and a digest prefix), or one
// NAME:TOKEN per line (who is "token:NAME"), blank lines and lines
// starting with # ignored. Every token is at least MinTokenSize bytes;
// names are unique, of letters, digits and _.@-; tokens are unique.
func ParseTokens(b []byte) ([]Token, error) {
	var lines []string
	sc := bufio.NewScanner(bytes.NewReader(b))
	for sc.Scan() {
		l := strings.TrimSpace(sc.Text())
		if l != "" && !strings.HasPrefix(l, "#") {
			lines = append(lines, l)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	if len(lines) == 0 {
		return nil, fmt.Errorf("no token")
	}
	if len(lines) == 1 && !strings.Contains(lines[0], ":") {
		if len(lines[0]) < MinTokenSize {
			return nil, fmt.Errorf("the token is %d bytes, want at least %d", len(lines[0]), MinTokenSize)
		}
		return []Token{{Secret: []byte(lines[0])}}, nil
	}
	var out []Token
	names, secrets := map[string]bool{}, map[string]bool{}
	for i, l := range lines {
		name, secret, ok := strings.Cut(l, ":")
		name, secret = strings.TrimSpace(name), strings.TrimSpace(secret)
		switch {
		case !ok || !tokenName.MatchString(name):
			return nil, fmt.Errorf("line %d: want NAME:TOKEN (NAME of letters, digits and _.@-)", i+1)
		case len(secret) < MinTokenSize:
			return nil, fmt.Errorf("line %d (%s): the token is %d bytes, want at least %d", i+1, name, len(secret), MinTokenSize)
		case names[name]:
			return nil, fmt.Errorf("line %d: the name %s repeats", i+1, name)
		case secrets[secret]:
			return nil, fmt.Errorf("line %d (%s): the same token as another operator's", i+1, name)
		}
		names[name], secrets[secret] = true, true
		out = append(out, Token{Name: name, Secret: []byte(secret)})
	}
	return out, nil
}
