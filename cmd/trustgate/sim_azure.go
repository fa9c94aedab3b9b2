package main

import (
	"github.com/trustgate/trustgate/internal/sim"
)

// simAzure is a simulated Azure VM of tee (azure-snp or azure-tdx) whose
// launch measurement (SEV-SNP MEASUREMENT or MRTD) is m and PCRs pcrs; nil
// means the simulator's defaults.
func simAzure(tee string, m *[48]byte, pcrs *[24][32]byte) (*sim.AzureDevice, error) {
	a := sim.AzureOptions{PCRs: pcrs}
	if tee == "azure-tdx" {
		return sim.NewAzureTDX(sim.TDXOptions{MRTD: m}, a)
	}
	return sim.NewAzureSNP(sim.Options{Measurement: m}, a)
}
