package policy

import (
	"reflect"
	"testing"
)

// BenchmarkInputValue is the policy input built from the claims struct,
// part of every evaluation.
func BenchmarkInputValue(b *testing.B) {
	var fc fieldCache
	c := claims(nil)
	b.ReportAllocs()
	for b.Loop() {
		if _, err := fc.inputValue(reflect.ValueOf(c)); err != nil {
			b.Fatal(err)
		}
	}
}
