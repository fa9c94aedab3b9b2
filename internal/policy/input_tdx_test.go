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

func tdxClaims() *attest.TDXClaims {
	b := func(n int, v byte) attest.Hex { return attest.Hex(bytes.Repeat([]byte{v}, n)) }
	return &attest.TDXClaims{
		TEE: "tdx", QuoteVersion: 5, MRTD: b(48, 0x6d), MRConfigID: b(48, 0), MROwner: b(48, 0), MROwnerConfig: b(48, 0),
		RTMR0: b(48, 1), RTMR1: b(48, 2), RTMR2: b(48, 3), RTMR3: b(48, 0), MRSeam: b(48, 4), MRSignerSeam: b(48, 0),
		SeamAttrs: b(8, 0), TDAttributes: attest.TDAttributes{SEPTVEDisable: true}, XFAM: b(8, 0xe7), TEETCBSVN: b(16, 1),
		ReportData: b(64, 9), FMSPC: b(6, 0xb0), TCBStatus: "UpToDate", AdvisoryIDs: []string{"INTEL-SA-00001", "INTEL-SA-00002"},
		TEETCBSVN2: b(16, 1), MRServiceTD: b(48, 0),
	}
}

// The policy input built from TDX claims is their JSON document, advisory
// ids (a list of strings) included, and v4 claims leave out the v5 keys.
func TestTDXInputValueMatchesJSON(t *testing.T) {
	t.Parallel()
	v4 := tdxClaims()
	v4.QuoteVersion, v4.TEETCBSVN2, v4.MRServiceTD, v4.AdvisoryIDs, v4.TCBStatus = 4, nil, nil, nil, ""
	for _, c := range []*attest.TDXClaims{tdxClaims(), v4} {
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
}

// The default policy allows approved TDX claims through Engine.Evaluate.
func TestEvaluateTDX(t *testing.T) {
	t.Parallel()
	c := tdxClaims()
	ref := &refvalues.Set{Measurements: []refvalues.Measurement{{TEE: "tdx", Value: c.MRTD.String(), Label: "td", RTMR: []string{c.RTMR0.String()}}}}
	e, err := New(context.Background(), Options{Reference: ref, Now: func() time.Time { return time.Now() }})
	if err != nil {
		t.Fatal(err)
	}
	d, err := e.Evaluate(context.Background(), c)
	if err != nil || !d.Allow || d.Label != "td" {
		t.Fatalf("decision %+v, %v", d, err)
	}
	c.RTMR0 = bytes.Repeat([]byte{7}, 48)
	if d, _ := e.Evaluate(context.Background(), c); d.Allow {
		t.Fatal("an RTMR0 other than the pinned one was allowed")
	}
	if _, err := e.Evaluate(context.Background(), (*attest.TDXClaims)(nil)); attest.ReasonOf(err) != attest.ReasonInternalError {
		t.Fatalf("nil claims: %v", err)
	}
}
