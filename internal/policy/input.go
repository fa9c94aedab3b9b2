package policy

import (
	"encoding/hex"
	"fmt"
	"reflect"
	"strings"
	"sync"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trustgate/trustgate/internal/attest"
)

// field is one JSON-tagged field of a claims struct, with its key term
// built once.
type field struct {
	index     int
	key       *ast.Term
	omitEmpty bool
}

// fieldCache maps a struct type to its fields; the zero value is ready.
type fieldCache struct{ m sync.Map }

func (c *fieldCache) fieldsOf(t reflect.Type) []field {
	if fs, ok := c.m.Load(t); ok {
		return fs.([]field)
	}
	var fs []field
	for i := 0; i < t.NumField(); i++ {
		name, opts, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name == "" || name == "-" {
			continue
		}
		fs = append(fs, field{index: i, key: ast.StringTerm(name), omitEmpty: strings.Contains(opts, "omitempty")})
	}
	c.m.Store(t, fs)
	return fs
}

// inputValue builds the policy input straight from the claims struct,
// following its JSON tags (attest.Hex as lowercase hex, nil pointers with
// omitempty left out): the document json.Marshal would give, without a
// JSON round trip, which would double the cost of an evaluation.
func (c *fieldCache) inputValue(v reflect.Value) (ast.Value, error) {
	t, err := c.term(v)
	if err != nil {
		return nil, err
	}
	return t.Value, nil
}

// hexType is the claims' byte-string type, rendered as lowercase hex.
var hexType = reflect.TypeFor[attest.Hex]()

// term is inputValue as a term; booleans, small numbers and short strings
// (tee, product, signer) are OPA's interned terms, allocated once.
func (c *fieldCache) term(v reflect.Value) (*ast.Term, error) {
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return ast.InternedNullTerm, nil
		}
		return c.term(v.Elem())
	case reflect.Struct:
		fs := c.fieldsOf(v.Type())
		obj := ast.NewObjectWithCapacity(len(fs))
		for _, f := range fs {
			fv := v.Field(f.index)
			if f.omitEmpty && fv.IsZero() {
				continue
			}
			t, err := c.term(fv)
			if err != nil {
				return nil, err
			}
			obj.Insert(f.key, t)
		}
		return ast.NewTerm(obj), nil
	case reflect.Slice:
		if v.Type() == hexType {
			return ast.StringTerm(hex.EncodeToString(v.Bytes())), nil
		}
		if v.Type().Elem().Kind() == reflect.String { // e.g. TDX advisory_ids
			terms := make([]*ast.Term, v.Len())
			for i := range terms {
				terms[i] = ast.StringTerm(v.Index(i).String())
			}
			return ast.ArrayTerm(terms...), nil
		}
	case reflect.String:
		return ast.InternedTerm(v.String()), nil
	case reflect.Bool:
		return ast.InternedTerm(v.Bool()), nil
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return ast.InternedTerm(int(v.Uint())), nil
	case reflect.Int, reflect.Int32, reflect.Int64:
		return ast.InternedTerm(int(v.Int())), nil
	}
	return nil, fmt.Errorf("policy input: unsupported claim type %s", v.Type())
}
