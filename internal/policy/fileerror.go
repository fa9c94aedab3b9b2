package policy

import (
	"bytes"
	"crypto/ecdsa"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"regexp"
	"strconv"
	"strings"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/rego"
	"gopkg.in/yaml.v3"

	"github.com/trustgate/trustgate/internal/refvalues"
)

// The files a FileError can name.
const (
	PolicyFile    = "policy"
	ReferenceFile = "reference values"
)

// FileError says which input file failed to load and why without quoting
// any of its content: OPA's messages quote source lines and identifiers,
// and YAML and JSON messages quote values, any of which may be a secret an
// operator put in the wrong file. It is what /readyz, the reload log and
// serve's start-up error show; `trustgate policy eval --policy FILE --data
// FILE` shows the full errors on the operator's own terminal.
type FileError struct {
	// File is PolicyFile or ReferenceFile.
	File string
	// Path is the file's path, as configured.
	Path string
	// Kind classifies the error. Policy: OPA's error code (rego_parse_error,
	// rego_compile_error, rego_type_error, rego_unsafe_var_error,
	// rego_recursion_error, ...) or "does_not_compile". Reference values:
	// yaml_syntax_error, yaml_type_error, yaml_unknown_field,
	// json_syntax_error, json_type_error, json_unknown_field,
	// json_trailing_data, unknown_extension, invalid_reference_values
	// (well formed, but refvalues.Set.Validate refused it), or, with a
	// trusted key, signature_missing, signature_malformed or
	// signature_invalid (the file was not decoded at all). Both:
	// "unreadable" (Cause says why, e.g. "no such file or directory").
	Kind string
	// Cause is the operating system's reason for "unreadable"; "" otherwise.
	Cause string
	// Line and Column locate the first error, both 1-based; 0 when the
	// error has no position (Column is often unknown for YAML).
	Line, Column int
	// Count is the number of errors found in the file, at least 1.
	Count int
	// Problems lists the errors of a reference-values file one by one,
	// each with its line ("line 5: ...") or its place in the document
	// ("measurements[0]: ..."), and what is wrong, with every value the
	// file holds left out ("…"). Empty when there is nothing to add to
	// Kind and Line.
	Problems []string
}

// Error names the file, the kind and the position; never the content.
func (e *FileError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s file %s: %s", e.File, e.Path, e.Kind)
	if e.Cause != "" {
		fmt.Fprintf(&b, " (%s)", e.Cause)
	}
	if e.Line > 0 {
		fmt.Fprintf(&b, " at line %d", e.Line)
		if e.Column > 0 {
			fmt.Fprintf(&b, ", column %d", e.Column)
		}
	}
	if e.Count > 1 {
		fmt.Fprintf(&b, " (%d errors in all)", e.Count)
	}
	switch {
	case e.Kind == KindRollback:
		b.WriteString("; the last good reference values stay in force; a file older than one already seen is never loaded again (sign the current file: `trustgate refvalues sign`)")
	case strings.HasPrefix(e.Kind, "signature_"):
		b.WriteString("; the last good reference values stay in force; `trustgate refvalues verify` shows the details")
	case e.Kind != "unreadable" && e.Kind != "unknown_extension":
		b.WriteString("; `trustgate policy eval` shows the details")
	}
	return b.String()
}

// unreadable returns the FileError of an error reading path, or nil if
// err is not one.
func unreadable(file, path string, err error) *FileError {
	var pe *fs.PathError
	if !errors.As(err, &pe) {
		return nil
	}
	return &FileError{File: file, Path: path, Kind: "unreadable", Cause: pe.Err.Error(), Count: 1}
}

// PolicyError describes err, an error reading or compiling the Rego file
// at path, as a *FileError (err itself if it already is one).
func PolicyError(path string, err error) error {
	if err == nil {
		return nil
	}
	var fe *FileError
	if errors.As(err, &fe) {
		return fe
	}
	if u := unreadable(PolicyFile, path, err); u != nil {
		return u
	}
	var list []*ast.Error
	var add func(error)
	add = func(err error) {
		var re rego.Errors
		var ae ast.Errors
		var one *ast.Error
		switch {
		case errors.As(err, &re):
			for _, e := range re {
				add(e)
			}
		case errors.As(err, &ae):
			list = append(list, ae...)
		case errors.As(err, &one):
			list = append(list, one)
		}
	}
	add(err)
	e := &FileError{File: PolicyFile, Path: path, Kind: "does_not_compile", Count: 1}
	if len(list) > 0 {
		e.Kind, e.Count = list[0].Code, len(list)
		if l := list[0].Location; l != nil {
			e.Line, e.Column = l.Row, l.Col
		}
	}
	return e
}

// KindRollback is the FileError kind of a reference-values file older
// than one already seen (Options.AdmitReference refused it).
const KindRollback = "rollback"

// RollbackError is the *FileError of kind rollback for the file at path
// refused by err (nil: nil). Its cause is err's text, which names
// versions only.
func RollbackError(path string, err error) error {
	if err == nil {
		return nil
	}
	return &FileError{File: ReferenceFile, Path: path, Kind: KindRollback, Cause: err.Error(), Count: 1}
}

// LoadReference reads, decodes and validates the reference-values file at
// path (refvalues.Load), describing a failure as a *FileError.
func LoadReference(path string) (*refvalues.Set, error) {
	return LoadSignedReference(path, nil)
}

// LoadSignedReference is LoadReference for a file that must be signed
// under trust (nil: need not be): the file is decoded only if the
// detached signature beside it (path + refvalues.SigSuffix) verifies over
// the very bytes read; else the FileError's Kind is the
// *refvalues.SignatureError's (signature_missing, signature_malformed,
// signature_invalid).
func LoadSignedReference(path string, trust *ecdsa.PublicKey) (*refvalues.Set, error) {
	f, err := refvalues.FormatOf(path)
	if err != nil {
		return nil, &FileError{File: ReferenceFile, Path: path, Kind: "unknown_extension", Count: 1}
	}
	data, err := refvalues.ReadSigned(path, trust)
	if err != nil {
		var se *refvalues.SignatureError
		if errors.As(err, &se) {
			fe := &FileError{File: ReferenceFile, Path: path, Kind: se.Kind, Count: 1}
			if u := unreadable(ReferenceFile, path+refvalues.SigSuffix, se.Err); u != nil && se.Kind == "signature_missing" {
				fe.Cause = u.Cause
			}
			return nil, fe
		}
		if u := unreadable(ReferenceFile, path, err); u != nil {
			return nil, u
		}
		return nil, &FileError{File: ReferenceFile, Path: path, Kind: "unreadable", Count: 1}
	}
	s, err := refvalues.Parse(data, f)
	if err != nil {
		return nil, referenceError(path, data, err)
	}
	return s, nil
}

var (
	yamlLine   = regexp.MustCompile(`\bline (\d+):`)
	quoted     = regexp.MustCompile(`"(?:[^"\\]|\\.)*"`)
	notFound   = regexp.MustCompile(`field (\S+) not found in type \S+`)
	unmarshalT = regexp.MustCompile(`cannot unmarshal !!(\w+) .* into (\S+)$`)
)

// yamlProblem rewrites one of yaml.v3's type errors without the file's
// content and without Go's type names: "line 5: unknown key", "line 6: a
// string where a number belongs".
func yamlProblem(m string) string {
	where := "somewhere"
	if n := lineOf(m); n > 0 {
		where = fmt.Sprintf("line %d", n)
	}
	if notFound.MatchString(m) {
		return where + ": unknown key (the keys are those of docs/policy.md's reference values: measurements with value, label, expires, resources, tee, rtmr; min_tcb; allowed_vmpl; tdx_tcb_status)"
	}
	if s := unmarshalT.FindStringSubmatch(m); s != nil {
		want := "another kind of value"
		switch into := s[2]; {
		case strings.HasPrefix(into, "[]"):
			want = "a list"
		case strings.HasPrefix(into, "map["), strings.Contains(into, "."):
			want = "a mapping of keys"
		case strings.HasPrefix(into, "int"), strings.HasPrefix(into, "uint"):
			want = "a whole number"
		case into == "string":
			want = "a string"
		case into == "bool":
			want = "true or false"
		}
		return fmt.Sprintf("%s: a %s where %s belongs", where, map[string]string{"str": "string", "int": "number", "seq": "list", "map": "mapping", "bool": "true/false", "float": "number"}[s[1]], want)
	}
	return where + ": a value of the wrong type"
}

// referenceError classifies a refvalues.Parse error of data.
func referenceError(path string, data []byte, err error) *FileError {
	e := &FileError{File: ReferenceFile, Path: path, Count: 1}
	var ve *refvalues.ValidationError
	var jsErr *json.SyntaxError
	var jtErr *json.UnmarshalTypeError
	var ytErr *yaml.TypeError
	msg := err.Error()
	switch {
	case errors.As(err, &ve):
		e.Kind, e.Count = "invalid_reference_values", len(ve.Problems)
		for _, p := range ve.Problems {
			e.Problems = append(e.Problems, quoted.ReplaceAllString(p, `"…"`))
		}
	case errors.As(err, &jsErr):
		e.Kind = "json_syntax_error"
		e.Line, e.Column = position(data, jsErr.Offset)
	case errors.As(err, &jtErr):
		e.Kind = "json_type_error"
		e.Line, e.Column = position(data, jtErr.Offset)
	case errors.As(err, &ytErr):
		e.Kind, e.Count = "yaml_type_error", len(ytErr.Errors)
		if len(ytErr.Errors) > 0 {
			if strings.Contains(ytErr.Errors[0], " not found in type ") {
				e.Kind = "yaml_unknown_field"
			}
			e.Line = lineOf(ytErr.Errors[0])
		}
		for _, m := range ytErr.Errors {
			e.Problems = append(e.Problems, yamlProblem(m))
		}
	case strings.Contains(msg, "json: unknown field"):
		e.Kind = "json_unknown_field"
	case strings.Contains(msg, "decoding JSON: trailing data"):
		e.Kind = "json_trailing_data"
	case strings.Contains(msg, "decoding JSON"):
		e.Kind = "json_syntax_error"
	default:
		e.Kind = "yaml_syntax_error"
		e.Line = lineOf(msg)
	}
	if e.Count < 1 {
		e.Count = 1
	}
	return e
}

func lineOf(msg string) int {
	if m := yamlLine.FindStringSubmatch(msg); m != nil {
		n, _ := strconv.Atoi(m[1])
		return n
	}
	return 0
}

// position is the 1-based line and column of byte offset off in data.
func position(data []byte, off int64) (line, col int) {
	if off < 0 || off > int64(len(data)) {
		return 0, 0
	}
	before := data[:off]
	line = bytes.Count(before, []byte("\n")) + 1
	col = int(off) - (bytes.LastIndexByte(before, '\n') + 1)
	if col < 1 {
		col = 1
	}
	return line, col
}
