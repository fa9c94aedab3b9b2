package sim

import (
	"bytes"
	"crypto/ecdsa"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"time"

	"github.com/trustgate/trustgate/internal/tee/snp"
)

// DefaultMeasurement is the launch measurement of a simulated guest when
// none is given: 48 bytes of 0x5a.
var DefaultMeasurement = [48]byte(bytes.Repeat([]byte{0x5a}, 48))

// Device is a simulated SEV-SNP guest device.
type Device struct {
	chain       *chain
	table       []byte
	measurement [48]byte
	policy      uint64
	vmpl        uint32
	reportID    [32]byte
	chipID      [64]byte
}

// Options shapes a simulated guest; the zero value is a production-like
// guest (no DEBUG, VMPL 0) with DefaultMeasurement.
type Options struct {
	Measurement *[48]byte
	Debug       bool
	VMPL        uint32
	// ChipID is the simulated chip's CHIP_ID; nil means DefaultChipID.
	ChipID *[64]byte
	// ReportID is the guest's REPORT_ID, the same in every report of the
	// Device as for one real launch; nil means random (a new launch).
	ReportID *[32]byte
}

// ParseMeasurement reads a launch measurement given as 96 hex digits; ""
// gives nil (DefaultMeasurement).
func ParseMeasurement(s string) (*[48]byte, error) {
	if s == "" {
		return nil, nil
	}
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 48 {
		return nil, errors.New("a measurement is 48 bytes of hex")
	}
	m := [48]byte(b)
	return &m, nil
}

// New returns a simulated Milan device with a fresh simulated AMD chain,
// issued an hour ago.
func New(o Options) (*Device, error) {
	chip := DefaultChipID
	if o.ChipID != nil {
		chip = *o.ChipID
	}
	c, err := newChain(snp.Milan, time.Now().Add(-time.Hour), chip, DefaultTCB)
	if err != nil {
		return nil, fmt.Errorf("simulated AMD chain: %w", err)
	}
	d := &Device{chain: c, table: c.certTable(), measurement: DefaultMeasurement, vmpl: o.VMPL, chipID: chip}
	if o.ReportID != nil {
		d.reportID = *o.ReportID
	} else {
		rand.Read(d.reportID[:])
	}
	if o.Measurement != nil {
		d.measurement = *o.Measurement
	}
	if o.Debug {
		d.policy = DebugPolicy
	}
	return d, nil
}

// VCEKPublicKey returns the key the simulated reports are signed with.
func (d *Device) VCEKPublicKey() *ecdsa.PublicKey { return &d.chain.vcekKey.PublicKey }

// Report returns a signed report binding reportData, and the extended
// report's certificate table (simulated ARK, ASK, VCEK).
func (d *Device) Report(reportData [64]byte) (report, certTable []byte) {
	f := ReportFields{Measurement: d.measurement, ReportData: reportData, Policy: d.policy, VMPL: d.vmpl, ChipID: &d.chipID, ReportID: d.reportID}
	return f.Sign(d.chain.product, d.chain.vcekKey), bytes.Clone(d.table)
}
