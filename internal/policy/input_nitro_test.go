package policy

import (
	"bytes"
	"context"
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/ast"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/refvalues"
)

// nitroClaims are the claims of a production-mode enclave: PCR0 0xe0…,
// PCR1 0xe1…, PCR2 0xe2…, PCR8 0xe8…, the other PCRs zero.
func nitroClaims() *attest.NitroClaims {
	b := func(n int, v byte) attest.Hex { return attest.Hex(bytes.Repeat([]byte{v}, n)) }
	c := &attest.NitroClaims{TEE: "nitro", ModuleID: "i-0123-enc01", Timestamp: 1725719859545, Digest: "SHA384",
		UserData: b(3, 1), ReportData: b(64, 9)}
	for i := range attest.NitroPCRs {
		*c.PCR(i) = b(48, 0)
	}
	c.PCR0, c.PCR1, c.PCR2, c.PCR8 = b(48, 0xe0), b(48, 0xe1), b(48, 0xe2), b(48, 0xe8)
	return c
}

// The policy input built from Nitro claims is their JSON document: flat
// pcr0 … pcr15, absent PCRs left out, an absent public_key "".
func TestNitroInputValueMatchesJSON(t *testing.T) {
	t.Parallel()
	few := nitroClaims()
	few.PCR9, few.PCR15 = nil, nil
	for _, c := range []*attest.NitroClaims{nitroClaims(), few} {
		b, _ := json.Marshal(c)
		want, err := ast.ValueFromReader(bytes.NewReader(b))
		if err != nil {
			t.Fatal(err)
		}
		got, err := new(fieldCache).inputValue(reflect.ValueOf(c))
		if err != nil {
			t.Fatal(err)
		}
		if got.Compare(want) != 0 {
			t.Fatalf("input differs:\n got %v\nwant %v", got, want)
		}
	}
	if b, _ := json.Marshal(few); bytes.Contains(b, []byte(`"pcr9"`)) || !bytes.Contains(b, []byte(`"pcr8"`)) {
		t.Fatalf("%s", b)
	}
}

// The default policy (OPA and its fast path) allows approved Nitro claims
// with their PCR pins, and denies a debug-mode enclave.
func TestEvaluateNitro(t *testing.T) {
	t.Parallel()
	c := nitroClaims()
	ref := &refvalues.Set{Measurements: []refvalues.Measurement{{TEE: "nitro", Value: c.PCR0.String(), Label: "enc",
		PCRs: map[string]string{"pcr8": c.PCR8.String()}, Resources: []string{"k"}}}}
	if err := ref.Validate(); err != nil {
		t.Fatal(err)
	}
	e, err := New(context.Background(), Options{Reference: ref, Now: time.Now})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Evaluate(context.Background(), c)
	if err != nil || !d.Allow || d.Label != "enc" || !reflect.DeepEqual(d.Resources, []string{"k"}) {
		t.Fatalf("%+v %v", d, err)
	}
	other := nitroClaims()
	other.PCR8 = attest.Hex(bytes.Repeat([]byte{0xee}, 48))
	if d, err := e.Evaluate(context.Background(), other); err != nil || d.Allow || d.Reasons[0] != "measurement_mismatch" {
		t.Fatalf("another PCR8: %+v %v", d, err)
	}
}
