package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"reflect"
	"strings"
)

// exactKeys walks the JSON value in body and refuses an object that holds
// a key twice, at any depth, and a key of a struct of t (the type decoded
// into; json.RawMessage and interface values are not looked into for
// names) that is not spelled exactly as a field's json tag. Other errors
// (syntax, unknown fields, types) are left to the decoder.
func exactKeys(body []byte, t reflect.Type) error {
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
	for i := range t.NumField() {
		f := t.Field(i)
		if jsonName(f) == key {
			return f.Type, true
		}
	}
	return nil, false
}

// fieldByFold reports whether key matches a field's JSON name but for case.
func fieldByFold(t reflect.Type, key string) (reflect.Type, bool) {
	for i := range t.NumField() {
		f := t.Field(i)
		if strings.EqualFold(jsonName(f), key) {
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
