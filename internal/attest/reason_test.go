package attest

import (
	"errors"
	"testing"
)

func TestWithReason(t *testing.T) {
	t.Parallel()
	if WithReason(ReasonVCEKUnavailable, "x", nil) != nil {
		t.Fatal("a nil error gained a reason")
	}
	// Already the reason: returned as it is, not wrapped twice.
	same := Errorf(ReasonVCEKUnavailable, "kds down")
	if got := WithReason(ReasonVCEKUnavailable, "Milan VCEK", same); got != error(same) {
		t.Fatalf("got %v, want the error itself", got)
	}
	// Another reason or none: wrapped, the cause still reachable.
	plain := errors.New("connection refused")
	got := WithReason(ReasonVCEKUnavailable, "Milan VCEK", plain)
	if ReasonOf(got) != ReasonVCEKUnavailable || !errors.Is(got, plain) {
		t.Fatalf("got %v", got)
	}
	if want := "vcek_unavailable: Milan VCEK: connection refused"; got.Error() != want {
		t.Fatalf("got %q, want %q", got, want)
	}
	other := Errorf(ReasonCertChainInvalid, "bad")
	if got := WithReason(ReasonVCEKUnavailable, "", other); ReasonOf(got) != ReasonVCEKUnavailable || got.Error() != "vcek_unavailable: cert_chain_invalid: bad" {
		t.Fatalf("got %v", got)
	}
}
