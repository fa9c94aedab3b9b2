package policy

import (
	"os"
	"testing"

	"github.com/open-policy-agent/opa/v1/format"
)

// The Rego files are formatted as `opa fmt` would.
func TestRegoFormatted(t *testing.T) {
	t.Parallel()
	for _, name := range []string{"default.rego", "default_test.rego"} {
		src, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		got, err := format.Source(name, src)
		if err != nil {
			t.Fatal(err)
		}
		if string(got) != string(src) {
			t.Errorf("%s is not formatted (opa fmt)", name)
		}
	}
}
