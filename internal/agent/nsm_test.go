package agent

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/fxamacker/cbor/v2"

	"github.com/trustgate/trustgate/internal/attest"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/tee/nitro"
)

// fakeNSM answers the NSM's Attestation request as the module does: the
// request must be {"Attestation": {user_data: null, nonce, public_key:
// null}}; the answer is {"Attestation": {"document": …}} from the
// simulator, or the response a test gives.
func fakeNSM(t *testing.T, answer func(nonce []byte) any) func([]byte) ([]byte, error) {
	return func(req []byte) ([]byte, error) {
		var r map[string]map[string]any
		if err := cbor.Unmarshal(req, &r); err != nil {
			t.Fatalf("request %x: %v", req, err)
		}
		a, ok := r["Attestation"]
		if !ok || len(r) != 1 || a["user_data"] != nil || a["public_key"] != nil {
			t.Fatalf("request %v", r)
		}
		nonce, _ := a["nonce"].([]byte)
		return cbor.Marshal(answer(nonce))
	}
}

func TestNSMDevice(t *testing.T) {
	t.Parallel()
	if nsmIoctlRequest != 0xC0200A00 {
		t.Fatalf("NSM_IOCTL_REQUEST %#x, want 0xc0200a00", nsmIoctlRequest)
	}
	enclave, err := sim.NewNitro(sim.NitroOptions{})
	if err != nil {
		t.Fatal(err)
	}
	rd := [64]byte(bytes.Repeat([]byte{5}, 64))
	d := &NSMDevice{exchange: fakeNSM(t, func(nonce []byte) any {
		doc, err := enclave.Document([64]byte(nonce))
		if err != nil {
			t.Fatal(err)
		}
		return map[string]any{"Attestation": map[string]any{"document": doc}}
	})}
	if TEEOf(d) != TEENitro || d.Kind() != DeviceNSM || d.Close() != nil {
		t.Fatal("NSMDevice's TEE, kind or Close")
	}
	doc, table, err := d.Report(context.Background(), rd)
	if err != nil || table != nil {
		t.Fatal(err)
	}
	v, err := sim.NewNitroVerifier(nitro.Options{})
	if err != nil {
		t.Fatal(err)
	}
	c, err := v.Verify(context.Background(), nitro.Evidence{Document: doc})
	if err != nil {
		t.Fatal(err)
	}
	if err := attest.ExpectReportData(c, rd[:]); err != nil {
		t.Fatal(err)
	}
	for name, resp := range map[string]any{
		"NSM error":    map[string]any{"Error": "InvalidArgument"},
		"no document":  map[string]any{"Attestation": map[string]any{}},
		"other answer": map[string]any{"DescribePCR": map[string]any{"lock": false}},
		"not a map":    []int{1},
	} {
		d := &NSMDevice{exchange: fakeNSM(t, func([]byte) any { return resp })}
		if _, _, err := d.Report(context.Background(), rd); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
	broken := &NSMDevice{exchange: func([]byte) ([]byte, error) { return nil, errors.New("EIO") }}
	if _, _, err := broken.Report(context.Background(), rd); err == nil {
		t.Error("a failed ioctl gave a document")
	}
	if _, err := OpenNSM(t.TempDir() + "/nsm"); err == nil {
		t.Error("OpenNSM of a missing device succeeded")
	}
}

// The agent's request for a Nitro device carries tee nitro and the
// document as evidence.document.
func TestSimNitroDeviceIsNitro(t *testing.T) {
	t.Parallel()
	enclave, err := sim.NewNitro(sim.NitroOptions{})
	if err != nil {
		t.Fatal(err)
	}
	dev := SimNitroDevice{Sim: enclave}
	if TEEOf(dev) != TEENitro {
		t.Fatal(TEEOf(dev))
	}
	doc, _, err := dev.Report(context.Background(), [64]byte{})
	if err != nil || !nitro.IsDocument(doc) {
		t.Fatal(err)
	}
}
