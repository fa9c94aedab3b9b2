package attest

import (
	"slices"
	"testing"
)

// The TDX reasons of SPEC "Intel TDX": in Reasons (so metrics pre-initialise
// them), 503 and exit 3 for the two unavailable dependencies, 403 for the
// judgements; tcb_out_of_date is a reason a policy may give.
func TestTDXReasons(t *testing.T) {
	t.Parallel()
	for r, status := range map[Reason]int{
		ReasonCollateralUnavailable: 503, ReasonPolicyUnavailable: 503,
		ReasonCollateralInvalid: 403, ReasonTCBOutOfDate: 403, ReasonTCBRevoked: 403,
	} {
		if !slices.Contains(Reasons(), r) {
			t.Errorf("%s is not in Reasons()", r)
		}
		if r.Status() != status || r.Unavailable() != (status == 503) {
			t.Errorf("%s: status %d unavailable %t", r, r.Status(), r.Unavailable())
		}
	}
	if ReasonOf(Decision{Reasons: []string{"tcb_out_of_date"}}.Err()) != ReasonTCBOutOfDate {
		t.Error("a policy cannot deny with tcb_out_of_date")
	}
}

// REPORT_DATA and the launch measurement are compared the same way for
// every TEE.
func TestExpectForEveryTEE(t *testing.T) {
	t.Parallel()
	rd, m := make([]byte, 64), make([]byte, 48)
	rd[0], m[0] = 1, 2
	for _, v := range []Verified{&Claims{ReportData: rd, Measurement: m}, &TDXClaims{ReportData: rd, MRTD: m}} {
		if err := Expect(v, m, rd); err != nil {
			t.Errorf("%T: %v", v, err)
		}
		if ReasonOf(Expect(v, nil, make([]byte, 64))) != ReasonReportDataMismatch {
			t.Errorf("%T: REPORT_DATA mismatch not caught", v)
		}
		if ReasonOf(Expect(v, make([]byte, 48), nil)) != ReasonMeasurementMismatch {
			t.Errorf("%T: measurement mismatch not caught", v)
		}
	}
}
