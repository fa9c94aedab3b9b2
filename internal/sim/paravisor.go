package sim

import (
	"encoding/binary"
	"fmt"
	"sync"

	"github.com/google/go-tpm/tpm2"
	"github.com/google/go-tpm/tpm2/transport"

	"github.com/trustgate/trustgate/internal/vtpm"
)

// Paravisor is Azure's paravisor in front of a real TPM 2.0 (swtpm in
// tests): commands pass through to TPM, and after a successful
// TPM2_NV_Write to the user-data index it makes a new HCL report — Dev's
// hardware report binding the runtime data with the TPM's own attestation
// key and that user-data — and writes it to the report index, as Azure's
// paravisor does. The TPM must be provisioned (vtpm.Provision) with a
// report index of ReportSize bytes. Not safe for concurrent use.
type Paravisor struct {
	TPM transport.TPM
	Dev *AzureDevice

	mu      sync.Mutex
	tdQuote []byte // the TD quote of the last report (azure-tdx)
	vcek    []byte // the VCEK and its chain, PEM (azure-snp)
}

// VCEK is the VCEK of the last HCL report with ASK and ARK (PEM), what
// Azure's THIM serves (azure-snp).
func (p *Paravisor) VCEK() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.vcek
}

// ReportSize is the HCL report index of a provisioned simulated vTPM: the
// largest NV index libtpms (swtpm) allows; the simulator's runtime data
// fits in it.
const ReportSize = 2048

// TDQuote is the TD quote of the last HCL report (azure-tdx), what the
// host's quote service answers for its TDREPORT.
func (p *Paravisor) TDQuote() []byte {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.tdQuote
}

// Send implements transport.TPM.
func (p *Paravisor) Send(cmd []byte) ([]byte, error) {
	rsp, err := p.TPM.Send(cmd)
	if err != nil || !writesUserData(cmd) || len(rsp) < 10 || binary.BigEndian.Uint32(rsp[6:10]) != 0 {
		return rsp, err
	}
	if err := p.makeReport(); err != nil {
		return nil, fmt.Errorf("simulated paravisor: %w", err)
	}
	return rsp, nil
}

// writesUserData reports whether cmd is TPM2_NV_Write (TPM 2.0 Library
// Part 3 §31.7: header, then authHandle and nvIndex) to the user-data
// index.
func writesUserData(cmd []byte) bool {
	return len(cmd) >= 18 && tpm2.TPMCC(binary.BigEndian.Uint32(cmd[6:10])) == tpm2.TPMCCNVWrite &&
		tpm2.TPMHandle(binary.BigEndian.Uint32(cmd[14:18])) == vtpm.NVIndexUserData
}

func (p *Paravisor) makeReport() error {
	ud, err := vtpm.NVRead(p.TPM, vtpm.NVIndexUserData)
	if err != nil {
		return err
	}
	ak, err := vtpm.AKPublic(p.TPM, vtpm.AKHandle)
	if err != nil {
		return err
	}
	ev, err := p.Dev.HCLEvidence(ak, [64]byte(ud))
	if err != nil {
		return err
	}
	blob := ev.HCLReport
	if len(blob) > ReportSize {
		for _, b := range blob[ReportSize:] {
			if b != 0 {
				return fmt.Errorf("the HCL report does not fit the %d-byte index", ReportSize)
			}
		}
		blob = blob[:ReportSize]
	}
	p.mu.Lock()
	p.tdQuote, p.vcek = ev.TDQuote, ev.VCEK
	p.mu.Unlock()
	return vtpm.NVWrite(p.TPM, vtpm.NVIndexHCLReport, blob)
}
