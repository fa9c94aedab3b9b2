package agent_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"github.com/trustgate/trustgate/client"
	"github.com/trustgate/trustgate/internal/agent"
	"github.com/trustgate/trustgate/internal/app/apptest"
	"github.com/trustgate/trustgate/internal/sim"
	"github.com/trustgate/trustgate/internal/testkit"
	"github.com/trustgate/trustgate/internal/vtpm"
)

// The agent's vTPM device against a real TPM 2.0 (swtpm) provisioned as
// Azure's vTPM, with the simulated paravisor writing the HCL report into
// the NV index after the agent writes its user-data, and Azure's THIM and
// TD quote service as loopback fakes: the NV writes and reads, the quote
// by the persistent attestation key and the PCR reads run for real, and a
// --dev-simulator verifier pinning swtpm's PCR 0 affirms the evidence.
func TestVTPMDeviceAgainstSWTPM(t *testing.T) {
	t.Parallel()
	cfg := apptest.SimVerifier(t, nil)
	ref, err := os.ReadFile(cfg.ReferenceValues)
	if err != nil {
		t.Fatal(err)
	}
	zero := strings.Repeat("00", 32)
	ref = append(ref, []byte("  - tee: azure-snp\n    value: \"\"\n    label: swtpm-snp\n    pcrs: {pcr00: \""+zero+"\"}\n"+
		"  - tee: azure-tdx\n    value: \"\"\n    label: swtpm-tdx\n    pcrs: {pcr00: \""+zero+"\"}\n")...)
	if err := os.WriteFile(cfg.ReferenceValues, ref, 0o600); err != nil {
		t.Fatal(err)
	}
	c := &client.Client{BaseURL: apptest.Start(t, cfg)}
	for _, tee := range []string{agent.TEEAzureSNP, agent.TEEAzureTDX} {
		t.Run(tee, func(t *testing.T) {
			t.Parallel()
			tpm := testkit.SWTPM(t)
			if err := vtpm.Provision(tpm, sim.ReportSize); err != nil {
				t.Fatal(err)
			}
			var dev *sim.AzureDevice
			if tee == agent.TEEAzureTDX {
				dev, err = sim.NewAzureTDX(sim.TDXOptions{}, sim.AzureOptions{})
			} else {
				dev, err = sim.NewAzureSNP(sim.Options{}, sim.AzureOptions{})
			}
			if err != nil {
				t.Fatal(err)
			}
			pv := &sim.Paravisor{TPM: tpm, Dev: dev}
			imds := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				switch {
				case r.URL.Path == "/metadata/THIM/amd/certification" && r.Header.Get("Metadata") == "true":
					json.NewEncoder(w).Encode(map[string]string{"vcekCert": string(pv.VCEK())})
				case r.URL.Path == "/acc/tdquote" && r.Method == http.MethodPost:
					json.NewEncoder(w).Encode(map[string]string{"quote": base64.RawURLEncoding.EncodeToString(pv.TDQuote())})
				default:
					http.NotFound(w, r)
				}
			}))
			defer imds.Close()
			d := &agent.VTPMDevice{TPM: pv, Kind: tee, QuoteURL: imds.URL + "/acc/tdquote", VCEKURL: imds.URL + "/metadata/THIM/amd/certification"}
			ctx := context.Background()
			p, err := agent.Prepare(ctx, c, d)
			if err != nil {
				t.Fatal(err)
			}
			if p.Request.TEE != tee || !strings.Contains(string(p.Request.Evidence.Azure), `"pcrs":["`+zero) {
				t.Fatalf("request %s: %.300s", p.Request.TEE, p.Request.Evidence.Azure)
			}
			resp, err := c.Attest(ctx, p.Request)
			if err != nil {
				t.Fatalf("attest: %v", err)
			}
			if resp.Status != "affirming" {
				t.Fatalf("status %q", resp.Status)
			}
			// The same evidence again: the nonce is spent.
			if _, err := c.Attest(ctx, p.Request); err == nil {
				t.Fatal("a replayed request was affirmed")
			}
		})
	}
}
