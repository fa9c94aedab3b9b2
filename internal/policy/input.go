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
	// inline is an embedded struct without a JSON name (Azure claims embed
	// their TEE's): its fields are the outer object's, as encoding/json
	// has it.
	inline bool
}

// fieldCache maps a struct type to its fields; the zero value is ready.
type fieldCache struct{ m sync.Map }

func (c *fieldCache) fieldsOf(t reflect.Type) []field {
	if fs, ok := c.m.Load(t); ok {
		return fs.([]field)
	}
	var fs []field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		name, opts, _ := strings.Cut(sf.Tag.Get("json"), ",")
		if sf.Anonymous && name == "" && sf.IsExported() {
			fs = append(fs, field{index: i, inline: true})
			continue
		}
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
		obj := ast.NewObjectWithCapacity(len(c.fieldsOf(v.Type())))
		if err := c.insertFields(obj, v); err != nil {
			return nil, err
		}
		return ast.NewTerm(obj), nil
	case reflect.Map:
		if v.Type().Key().Kind() != reflect.String {
			break
		}
		obj := ast.NewObjectWithCapacity(v.Len())
		for it := v.MapRange(); it.Next(); {
			t, err := c.term(it.Value())
			if err != nil {
				return nil, err
			}
			obj.Insert(ast.StringTerm(it.Key().String()), t)
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

// insertFields inserts the fields of struct v into obj, those of embedded
// structs included (a nil embedded pointer adds nothing).
func (c *fieldCache) insertFields(obj ast.Object, v reflect.Value) error {
	for _, f := range c.fieldsOf(v.Type()) {
		fv := v.Field(f.index)
		if f.inline {
			if fv.Kind() == reflect.Pointer {
				if fv.IsNil() {
					continue
				}
				fv = fv.Elem()
			}
			if fv.Kind() != reflect.Struct {
				return fmt.Errorf("policy input: unsupported embedded claim type %s", fv.Type())
			}
			if err := c.insertFields(obj, fv); err != nil {
				return err
			}
			continue
		}
		if f.omitEmpty && fv.IsZero() {
			continue
		}
		t, err := c.term(fv)
		if err != nil {
			return err
		}
		obj.Insert(f.key, t)
	}
	return nil
}
