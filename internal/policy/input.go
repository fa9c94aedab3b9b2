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
	switch v.Kind() {
	case reflect.Pointer:
		if v.IsNil() {
			return ast.Null{}, nil
		}
		return c.inputValue(v.Elem())
	case reflect.Struct:
		fs := c.fieldsOf(v.Type())
		obj := ast.NewObjectWithCapacity(len(fs))
		for _, f := range fs {
			fv := v.Field(f.index)
			if f.omitEmpty && fv.IsZero() {
				continue
			}
			val, err := c.inputValue(fv)
			if err != nil {
				return nil, err
			}
			obj.Insert(f.key, ast.NewTerm(val))
		}
		return obj, nil
	case reflect.Slice:
		if v.Type() == reflect.TypeFor[attest.Hex]() {
			return ast.String(hex.EncodeToString(v.Bytes())), nil
		}
	case reflect.String:
		return ast.String(v.String()), nil
	case reflect.Bool:
		return ast.Boolean(v.Bool()), nil
	case reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return ast.InternedTerm(int(v.Uint())).Value, nil
	case reflect.Int, reflect.Int32, reflect.Int64:
		return ast.InternedTerm(int(v.Int())).Value, nil
	}
	return nil, fmt.Errorf("policy input: unsupported claim type %s", v.Type())
}
