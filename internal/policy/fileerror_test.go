package policy

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/internal/refvalues"
)

// secretish stands for a secret an operator pasted into the wrong file.
const secretish = "AKIA_SECRET_4f9c"

// A file that does not load is described by which file, the kind of error
// and its position, never by a quote of its content, although OPA's, YAML's
// and JSON's own messages quote it.
func TestFileErrorsQuoteNothing(t *testing.T) {
	t.Parallel()
	cases := []struct {
		name, file, body string
		kind             string
		line, column     int // 0: not checked
	}{
		{"rego parse", "p.rego", "package trustgate\n\ndecision := {\"allow\": \"" + secretish + "\" ===\n", "rego_parse_error", 3, 0},
		{"rego unsafe var", "p.rego", "package trustgate\n\ndecision := {\"allow\": " + secretish + "}\n", "rego_unsafe_var_error", 3, 0},
		{"rego unknown function", "p.rego", "package trustgate\n\ndecision := {\"allow\": " + strings.ToLower(secretish) + "(1)}\n", "rego_type_error", 3, 0},
		{"yaml type", "r.yaml", "measurements: []\nallowed_vmpl: [" + secretish + "]\n", "yaml_type_error", 2, 0},
		{"yaml unknown key", "r.yaml", "measurements: []\n" + secretish + ": 1\n", "yaml_unknown_field", 2, 0},
		{"yaml syntax", "r.yaml", "measurements:\n  - value: \"" + secretish + "\n", "yaml_syntax_error", 0, 0},
		{"json syntax", "r.json", "{\n  \"measurements\": " + secretish + "\n}", "json_syntax_error", 2, 0},
		{"json unknown key", "r.json", `{"` + secretish + `": 1}`, "json_unknown_field", 0, 0},
		{"json type", "r.json", "{\"allowed_vmpl\": [\"" + secretish + "\"]}", "json_type_error", 1, 0},
		{"invalid values", "r.yaml", "measurements:\n  - value: " + secretish + "\n    label: " + secretish + "\n", "invalid_reference_values", 0, 0},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			path := filepath.Join(t.TempDir(), tc.file)
			if err := os.WriteFile(path, []byte(tc.body), 0o600); err != nil {
				t.Fatal(err)
			}
			var err error
			if strings.HasSuffix(tc.file, ".rego") {
				_, err = New(context.Background(), Options{Module: tc.body, ModuleName: path})
				err = PolicyError(path, err)
			} else {
				_, err = LoadReference(path)
			}
			var fe *FileError
			if !errors.As(err, &fe) {
				t.Fatalf("%T %v, want a *FileError", err, err)
			}
			if fe.Kind != tc.kind || fe.Path != path || (tc.line != 0 && fe.Line != tc.line) || fe.Count < 1 {
				t.Errorf("%+v, want kind %s at line %d", fe, tc.kind, tc.line)
			}
			if strings.Contains(err.Error(), secretish) || strings.Contains(strings.ToLower(err.Error()), strings.ToLower(secretish)) {
				t.Errorf("the error quotes the file: %v", err)
			}
			if !strings.Contains(err.Error(), path) || !strings.Contains(err.Error(), tc.kind) {
				t.Errorf("the error does not say which file and what: %v", err)
			}
		})
	}
	// The full errors, for `trustgate policy eval`, still quote: the
	// cases above are ones that would leak.
	_, err := refvalues.Load(filepath.Join(t.TempDir(), "missing.yaml"))
	if err == nil {
		t.Fatal("a missing file loaded")
	}
	path := filepath.Join(t.TempDir(), "r.json")
	os.WriteFile(path, []byte(`{"`+secretish+`": 1}`), 0o600)
	if _, err := refvalues.Load(path); err == nil || !strings.Contains(err.Error(), secretish) {
		// Then the cases above guard nothing: find what leaks now.
		t.Fatalf("refvalues' own error no longer quotes the file: %v", err)
	}
}

// A file that cannot be read says why, in the operating system's words.
func TestFileErrorUnreadable(t *testing.T) {
	t.Parallel()
	path := filepath.Join(t.TempDir(), "gone.yaml")
	_, err := LoadReference(path)
	var fe *FileError
	if !errors.As(err, &fe) || fe.Kind != "unreadable" || fe.File != ReferenceFile || !strings.Contains(err.Error(), "no such file") {
		t.Fatalf("%v", err)
	}
	_, err = os.ReadFile(path)
	if !errors.As(PolicyError(path, err), &fe) || fe.Kind != "unreadable" || fe.File != PolicyFile {
		t.Fatalf("%v", err)
	}
}

// A reference-values file that does not load lists each problem where it
// is (line, or place in the document), quoting nothing of the file and
// naming no Go type.
func TestFileErrorListsProblems(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	for _, c := range []struct {
		src  string
		want []string
	}{
		{"measurements:\n  - value: \"" + strings.Repeat("5a", 48) + "\"\n    labl: s3cret-key\nmin_tcb: {bootloader: hunter2}\n",
			[]string{"line 3: unknown key", "line 4: a string where a whole number belongs"}},
		{"measurements:\n  - value: \"hunter2\"\n    label: b1\nallowed_vmpl: [7]\n",
			[]string{`measurements[0] ("…"): value must be 96 lowercase hex characters, got "…"`, "allowed_vmpl[0]: 7 is not a VMPL (0..3)"}},
	} {
		p := filepath.Join(dir, "r.yaml")
		os.WriteFile(p, []byte(c.src), 0o600)
		_, err := LoadReference(p)
		var fe *FileError
		if !errors.As(err, &fe) {
			t.Fatalf("%v: not a *FileError", err)
		}
		got := strings.Join(fe.Problems, "\n")
		for _, w := range c.want {
			if !strings.Contains(got, w) {
				t.Errorf("problems lack %q:\n%s", w, got)
			}
		}
		for _, secret := range []string{"hunter2", "s3cret", "labl", "uint8", "refvalues."} {
			if strings.Contains(got, secret) {
				t.Errorf("problems quote %q:\n%s", secret, got)
			}
		}
	}
}
