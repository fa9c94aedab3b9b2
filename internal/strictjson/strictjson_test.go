package strictjson

import (
	"errors"
	"testing"
)

type inner struct {
	Value string `json:"value"`
}

type outer struct {
	inner
	ID string `json:"jti"`
}

// Decode refuses what encoding/json takes leniently, also in the fields of
// an embedded struct (which encoding/json takes as the outer's own).
func TestDecodeStrict(t *testing.T) {
	var v outer
	if err := Decode([]byte(` {"value":"a","jti":"b"} `), &v); err != nil || v.Value != "a" || v.ID != "b" {
		t.Fatalf("valid: %+v, %v", v, err)
	}
	for _, body := range []string{
		`{"VALUE":"a","jti":"b"}`,
		`{"value":"a","JTI":"b"}`,
		`{"value":"a","value":"c","jti":"b"}`,
		`{"value":"a","jti":"b","x":1}`,
		`{"value":"a","jti":"b"}{}`,
		`{"value":"a","jti":"b"}]`,
		`[]`, ``, `null`,
	} {
		if err := Decode([]byte(body), &outer{}); err == nil {
			t.Errorf("%s: accepted", body)
		}
	}
	if err := Decode([]byte(`{"value":"a"} x`), &outer{}); !errors.Is(err, ErrTrailing) {
		t.Errorf("trailing data: %v, want ErrTrailing", err)
	}
	if err := Decode([]byte(`"x"`), &outer{}); !errors.Is(err, ErrNotObject) {
		t.Errorf("a string: %v, want ErrNotObject", err)
	}
}
