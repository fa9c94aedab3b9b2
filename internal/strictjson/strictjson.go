// Package strictjson decodes JSON as trustgate's APIs take it: exactly one
// object, no unknown fields, no key twice in any object, every key spelled
// exactly as its field's json tag, nothing after the object
// (encoding/json alone takes the last of two keys, matches keys
// case-insensitively and stops after the first value). The public API
// (internal/httpapi) and the admin API's bodies (internal/admin, through
// internal/refvalues) both decode with it.
package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// ErrNotObject and ErrTrailing are Decode's refusals of a body that is not
// a JSON object and of data after the object.
var (
	ErrNotObject = errors.New("not a JSON object")
	ErrTrailing  = errors.New("data after the JSON object")
)

// Decode decodes exactly one JSON object in body into v, strictly (see the
// package doc).
func Decode(body []byte, v any) error {
	if b := bytes.TrimLeft(body, " \t\r\n"); len(b) == 0 || b[0] != '{' {
		return ErrNotObject
	}
	if err := Keys(body, reflect.TypeOf(v)); err != nil {
		return err
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return err
	}
	// dec.More is false before a stray '}' or ']': ask for the next token.
	if _, err := dec.Token(); err != io.EOF {
		return ErrTrailing
	}
	return nil
}

// Keys walks the JSON value in body and refuses an object that holds
// a key twice, at any depth, and a key of a struct of t (the type decoded
// into; json.RawMessage and interface values are not looked into for
// names) that is not spelled exactly as a field's json tag. Other errors
// (syntax, unknown fields, types) are left to the decoder.
func Keys(body []byte, t reflect.Type) error {
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.UseNumber()
	err := walkKeys(dec, t, 0)
	var syn *json.SyntaxError
	if errors.As(err, &syn) || errors.Is(err, errEndOfInput) {
		return nil // the decoder reports it
	}
	return err
}

var errEndOfInput = errors.New("end of input")

// maxKeyDepth bounds the nesting walkKeys follows (the decoder's own limit
// is far above anything a request holds).
const maxKeyDepth = 64

var rawMessage = reflect.TypeFor[json.RawMessage]()

func walkKeys(dec *json.Decoder, t reflect.Type, depth int) error {
	if depth > maxKeyDepth {
		return errors.New("JSON nested too deeply")
	}
	for t != nil && t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t == rawMessage || (t != nil && t.Kind() == reflect.Interface) {
		t = nil
	}
	tok, err := dec.Token()
	if err != nil {
		if errors.Is(err, io.EOF) {
			return errEndOfInput
		}
		return err
	}
	d, ok := tok.(json.Delim)
	if !ok {
		return nil
	}
	switch d {
	case '{':
		seen := map[string]bool{}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return err
			}
			key, _ := kt.(string)
			if seen[key] {
				return fmt.Errorf("key %q appears twice in one object", key)
			}
			seen[key] = true
			var ft reflect.Type
			if t != nil {
				switch t.Kind() {
				case reflect.Struct:
					f, ok := fieldByTag(t, key)
					if !ok {
						if _, fold := fieldByFold(t, key); fold {
							return fmt.Errorf("key %q is not spelled as the field's name", key)
						}
					}
					ft = f
				case reflect.Map:
					ft = t.Elem()
				}
			}
			if err := walkKeys(dec, ft, depth+1); err != nil {
				return err
			}
		}
	case '[':
		var et reflect.Type
		if t != nil && (t.Kind() == reflect.Slice || t.Kind() == reflect.Array) {
			et = t.Elem()
		}
		for dec.More() {
			if err := walkKeys(dec, et, depth+1); err != nil {
				return err
			}
		}
	}
	_, err = dec.Token() // the closing delimiter
	return err
}

// fieldByTag returns the type of t's field whose JSON name is exactly key.
func fieldByTag(t reflect.Type, key string) (reflect.Type, bool) {
	return findField(t, func(name string) bool { return name == key }, 0)
}

// fieldByFold reports whether key matches a field's JSON name but for case.
func fieldByFold(t reflect.Type, key string) (reflect.Type, bool) {
	return findField(t, func(name string) bool { return strings.EqualFold(name, key) }, 0)
}

// findField looks through t's fields, and those of the structs embedded
// without a json name (whose fields encoding/json takes as t's own).
func findField(t reflect.Type, match func(string) bool, depth int) (reflect.Type, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if ft := f.Type; f.Anonymous && f.Tag.Get("json") == "" && depth < maxKeyDepth {
			for ft.Kind() == reflect.Pointer {
				ft = ft.Elem()
			}
			if ft.Kind() == reflect.Struct {
				if got, ok := findField(ft, match, depth+1); ok {
					return got, true
				}
				continue
			}
		}
		if match(jsonName(f)) {
			return f.Type, true
		}
	}
	return nil, false
}

func jsonName(f reflect.StructField) string {
	name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
	if name == "" {
		return f.Name
	}
	return name
}
