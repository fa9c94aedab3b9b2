package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/strictjson"
)

// fastAttest decodes a POST /v1/attest body of the shape agents send (one
// object; the keys nonce, tee, evidence with report, cert_table, quote and document,
// and tee_pubkey, each at most once and spelled exactly so; strings of
// printable ASCII without escapes; tee_pubkey an object) in one pass,
// into req as strictJSON would decode it. It returns false for anything
// else, also for bodies strictJSON accepts (null, escapes, other
// spellings of a key, ...) or refuses: strictJSON then decides, so the
// strictness is strictJSON's (FuzzFastAttestAgrees). encoding/json scans
// the 7 KB body twice, byte by byte; this finds each string's end with
// bytes.IndexByte.
func fastAttest(body []byte, req *v1.AttestRequest) bool {
	p := fastParser{b: body}
	if !p.object(func(key []byte) bool {
		switch string(key) {
		case "nonce":
			return p.base64(&req.Nonce)
		case "tee":
			s, ok := p.str()
			req.TEE = string(s)
			return ok
		case "evidence":
			return p.object(func(key []byte) bool {
				switch string(key) {
				case "report":
					return p.base64(&req.Evidence.Report)
				case "cert_table":
					return p.base64(&req.Evidence.CertTable)
				case "quote":
					return p.base64(&req.Evidence.Quote)
				case "document":
					return p.base64(&req.Evidence.Document)
				}
				return false
			})
		case "tee_pubkey":
			raw, ok := p.rawObject()
			req.TEEPubKey = append(json.RawMessage(nil), raw...)
			// strictJSON refuses a key twice in the JWK too.
			return ok && strictjson.Keys(raw, nil) == nil
		}
		return false
	}) {
		return false
	}
	p.ws()
	return p.i == len(p.b)
}

type fastParser struct {
	b []byte
	i int
}

// ws skips JSON whitespace.
func (p *fastParser) ws() {
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case ' ', '\t', '\n', '\r':
			p.i++
		default:
			return
		}
	}
}

// object parses an object whose values member parses (member is called
// at each value, after the colon and whitespace); a key seen twice is
// refused (encoding/json would take the last).
func (p *fastParser) object(member func(key []byte) bool) bool {
	p.ws()
	if p.i >= len(p.b) || p.b[p.i] != '{' {
		return false
	}
	p.i++
	p.ws()
	if p.i < len(p.b) && p.b[p.i] == '}' {
		p.i++
		return true
	}
	var seen [][]byte
	for {
		p.ws()
		key, ok := p.str()
		if !ok {
			return false
		}
		for _, k := range seen {
			if bytes.Equal(k, key) {
				return false
			}
		}
		seen = append(seen, key)
		p.ws()
		if p.i >= len(p.b) || p.b[p.i] != ':' {
			return false
		}
		p.i++
		p.ws()
		if !member(key) {
			return false
		}
		p.ws()
		if p.i >= len(p.b) {
			return false
		}
		switch p.b[p.i] {
		case ',':
			p.i++
		case '}':
			p.i++
			return true
		default:
			return false
		}
	}
}

// str parses a string of printable ASCII without escapes and returns its
// contents (a slice of the body).
func (p *fastParser) str() ([]byte, bool) {
	s, ok := p.strSpan()
	if !ok {
		return nil, false
	}
	for _, c := range s {
		if c < 0x20 || c > 0x7e || c == '\\' {
			return nil, false
		}
	}
	return s, true
}

// strSpan parses a string's extent up to the next '"', unchecked.
func (p *fastParser) strSpan() ([]byte, bool) {
	if p.i >= len(p.b) || p.b[p.i] != '"' {
		return nil, false
	}
	rest := p.b[p.i+1:]
	end := bytes.IndexByte(rest, '"')
	if end < 0 {
		return nil, false
	}
	p.i += end + 2
	return rest[:end], true
}

// base64 parses a string as encoding/json decodes one into a []byte
// (standard encoding, padded; "" is an empty, non-nil slice).
//
// The string is not checked byte by byte as str does: the base64 decoder
// refuses every byte outside its alphabet except '\r' and '\n' (which it
// skips, and which JSON does not allow raw in a string), so those two and
// '\\' (an escape, which could also hide the string's end) are all that
// is looked for, with IndexByte.
func (p *fastParser) base64(dst *[]byte) bool {
	s, ok := p.strSpan()
	if !ok || bytes.IndexByte(s, '\\') >= 0 || bytes.IndexByte(s, '\n') >= 0 || bytes.IndexByte(s, '\r') >= 0 {
		return false
	}
	b := make([]byte, base64.StdEncoding.DecodedLen(len(s)))
	n, err := base64.StdEncoding.Decode(b, s)
	if err != nil {
		return false
	}
	*dst = b[:n]
	return true
}

// rawObject returns the extent of an object value (strings in it of
// printable ASCII without escapes), checked to be valid JSON.
func (p *fastParser) rawObject() ([]byte, bool) {
	start, depth := p.i, 0
	for p.i < len(p.b) {
		switch p.b[p.i] {
		case '"':
			if _, ok := p.str(); !ok {
				return nil, false
			}
			continue
		case '{', '[':
			depth++
		case '}', ']':
			depth--
		}
		p.i++
		if depth == 0 {
			break
		}
	}
	raw := p.b[start:p.i]
	if depth != 0 || len(raw) == 0 || raw[0] != '{' || !json.Valid(raw) {
		return nil, false
	}
	return raw, true
}
