package config

import (
	_ "embed"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"reflect"
	"strings"
	"time"
)

// configSource is config.go itself: the doc comments of Config's fields
// are the usage of serve's flags, so that a key documented once is
// documented everywhere and a new key cannot lack its flag.
//
//go:embed config.go
var configSource string

// operatorWords rewrites a field's doc sentence for operators: without the
// field's own name in front ("Listen is the address..." is "the address
// ..."), and with every other Go field name as its key (Listen: listen;
// Redis, also the product's name, is left alone inside a sentence).
func operatorWords(s string, yamlOf map[string]string) string {
	words := strings.Fields(s)
	// The subject: "X is", "X and Y are", "X, PEM, restricts", "X trusts".
	i := 0
	for i < len(words) && (yamlOf[strings.TrimSuffix(words[i], ",")] != "" || (i > 0 && words[i] == "and")) {
		i++
	}
	if i > 0 {
		if i < len(words) && (words[i] == "is" || words[i] == "are") {
			i++
		}
		if i < len(words) && strings.HasSuffix(words[i-1], ",") {
			// "ClientCA, PEM, restricts": keep "PEM, restricts".
		}
		words = words[i:]
	}
	for j, w := range words {
		core := strings.TrimRight(w, ".,;:)")
		if core == "Redis" {
			continue
		}
		if y, ok := yamlOf[strings.TrimLeft(core, "(")]; ok {
			words[j] = strings.Replace(w, strings.TrimLeft(core, "("), y, 1)
		}
	}
	return strings.ReplaceAll(strings.Join(words, " "), `"" means`, "empty means")
}

// Key is one setting of Config, as a command line flag presents it.
type Key struct {
	// Name is the YAML key (flags use it with dashes: Flag).
	Name string
	// Usage is the first sentence of the field's doc comment (of the field
	// before it when two share one comment), on one line.
	Usage string
	// Default is the value Default() holds, in the form SetFlag takes; ""
	// when that is the zero value.
	Default string
	// Bool is set for true/false keys (a flag may be given bare).
	Bool bool
	// Duration is set for keys whose value is a duration (30s, 5m).
	Duration bool
}

// Flag is the key's command line flag name: the YAML key with dashes.
func (k Key) Flag() string { return strings.ReplaceAll(k.Name, "_", "-") }

// Keys lists every key of Config in declaration order, derived from the
// struct by reflection (yaml tags, field types) and from its doc comments.
func Keys() []Key {
	docs := fieldDocs()
	def := reflect.ValueOf(Default())
	rt := def.Type()
	yamlOf := map[string]string{}
	for i := range rt.NumField() {
		yamlOf[rt.Field(i).Name] = rt.Field(i).Tag.Get("yaml")
	}
	keys := make([]Key, 0, rt.NumField())
	prevDoc := ""
	for i := range rt.NumField() {
		f := rt.Field(i)
		doc, ok := docs[f.Name]
		if !ok || doc == "" {
			doc = prevDoc
		}
		prevDoc = doc
		k := Key{Name: f.Tag.Get("yaml"), Usage: operatorWords(firstSentence(doc), yamlOf), Bool: f.Type.Kind() == reflect.Bool}
		k.Duration = f.Type == reflect.TypeFor[time.Duration]()
		if v := def.Field(i); !v.IsZero() {
			k.Default = formatValue(v)
		}
		keys = append(keys, k)
	}
	return keys
}

// fieldDocs maps Config's field names to their doc comments (text only).
func fieldDocs() map[string]string {
	docs := map[string]string{}
	f, err := parser.ParseFile(token.NewFileSet(), "config.go", configSource, parser.ParseComments)
	if err != nil {
		return docs // cannot happen: the file compiled
	}
	ast.Inspect(f, func(n ast.Node) bool {
		ts, ok := n.(*ast.TypeSpec)
		if !ok || ts.Name.Name != "Config" {
			return true
		}
		st, ok := ts.Type.(*ast.StructType)
		if !ok {
			return false
		}
		for _, fld := range st.Fields.List {
			text := ""
			if fld.Doc != nil {
				text = fld.Doc.Text()
			}
			for _, name := range fld.Names {
				docs[name.Name] = text
			}
		}
		return false
	})
	return docs
}

// firstSentence is the text up to the first ". " (or all of it), on one
// line, backquotes made plain quotes (the flag package would take a
// backquoted word for the value's name).
func firstSentence(doc string) string {
	doc = strings.ReplaceAll(strings.Join(strings.Fields(doc), " "), "`", "'")
	if i := strings.Index(doc, ". "); i >= 0 {
		return doc[:i+1]
	}
	return doc
}

func formatValue(v reflect.Value) string {
	switch x := v.Interface().(type) {
	case time.Duration:
		return x.String()
	default:
		return fmt.Sprint(x)
	}
}
