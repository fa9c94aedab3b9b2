package app

import (
	"context"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/http"
	"strings"
	"testing"

	v1 "github.com/trustgate/trustgate/api/v1"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/tee/azure"
)

// /v1/attest with tee azure-snp and azure-tdx (SPEC "Azure confidential
// VMs"): a simulated Azure CVM whose PCRs the reference values pin is
// affirmed; a PCR changed in transit is signature_invalid; PCRs no entry
// pins are measurement_mismatch; evidence bound to another nonce is
// report_data_mismatch. Attempts are counted under their tee.
func TestAttestAzure(t *testing.T) {
	t.Parallel()
	pcrs := sim.DefaultPCRs()
	pin := hex.EncodeToString(pcrs[4][:])
	ref := refYAML(fmt.Sprintf("  - tee: azure-snp\n    value: \"\"\n    label: az-1\n    pcrs: {pcr04: %q}\n  - tee: azure-tdx\n    value: \"\"\n    label: aztd-1\n    pcrs: {pcr04: %q}\n", pin, pin))
	s := startServer(t, ref, nil)
	snpDev, err := sim.NewAzureSNP(sim.Options{}, sim.AzureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tdxDev, err := sim.NewAzureTDX(sim.TDXOptions{}, sim.AzureOptions{})
	if err != nil {
		t.Fatal(err)
	}
	other := pcrs
	other[4][0] ^= 1
	unpinned, err := sim.NewAzureSNP(sim.Options{}, sim.AzureOptions{PCRs: &other})
	if err != nil {
		t.Fatal(err)
	}
	hc := &http.Client{}
	for _, tc := range []struct {
		name   string
		dev    *sim.AzureDevice
		change func(n []byte, ev *[]byte)
		status int
		reason string
	}{
		{"azure-snp", snpDev, nil, 200, ""},
		{"azure-tdx", tdxDev, nil, 200, ""},
		{"a PCR changed", snpDev, func(_ []byte, ev *[]byte) {
			*ev = []byte(strings.Replace(string(*ev), hex.EncodeToString(pcrs[4][:]), hex.EncodeToString(other[4][:]), 1))
		}, 403, "signature_invalid"},
		{"unpinned PCRs", unpinned, nil, 403, "measurement_mismatch"},
		{"another nonce", tdxDev, func(n []byte, _ *[]byte) { n[0] ^= 1 }, 403, "report_data_mismatch"},
	} {
		ch, err := s.c.Challenge(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		bound := [64]byte(ch.Nonce)
		if tc.change != nil {
			tc.change(bound[:], new([]byte))
		}
		ev, err := tc.dev.Evidence(bound)
		if err != nil {
			t.Fatal(err)
		}
		wire, err := azure.EncodeEvidence(ev)
		if err != nil {
			t.Fatal(err)
		}
		if tc.change != nil {
			tc.change(make([]byte, 64), &wire)
		}
		body := fmt.Sprintf(`{"nonce":%q,"tee":%q,"evidence":%s}`, base64.StdEncoding.EncodeToString(ch.Nonce), tc.dev.TEE(), wire)
		if status, reason := post(t, hc, s.url+v1.PathAttest, "", []byte(body)); status != tc.status || reason != tc.reason {
			t.Errorf("%s: %d %s, want %d %s", tc.name, status, reason, tc.status, tc.reason)
		}
	}
	m := scrapeMetrics(t, hc, s.url)
	for _, want := range []string{
		`trustgate_attestations_total{reason="none",result="pass",tee="azure-snp"} 1`,
		`trustgate_attestations_total{reason="none",result="pass",tee="azure-tdx"} 1`,
		`trustgate_attestations_total{reason="signature_invalid",result="fail",tee="azure-snp"} 1`,
		`trustgate_attestations_total{reason="report_data_mismatch",result="fail",tee="azure-tdx"} 1`,
	} {
		if !strings.Contains(m, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
}
