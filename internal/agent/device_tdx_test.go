package agent

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"
	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/client"
)

// WithTEE chooses what the guest device gives: auto follows configfs-tsm's
// provider (tdx_guest → TDX quotes, sev_guest → SEV-SNP reports) and falls
// back to /dev/sev-guest; tdx needs configfs-tsm with the tdx_guest
// provider.
func TestOpenerTEE(t *testing.T) {
	rd := testReportData(5)
	snp := func() configfsi.Client { return fakeTSM("sev_guest", abi.ReportSize, nil) }
	tdx := func() configfsi.Client { return fakeTSM("tdx_guest", 5000, []byte("not asked")) }
	for _, tc := range []struct {
		name     string
		tee      string
		kind     string
		tsm      configfsi.Client
		sev      bool
		wantKind string // "" → error containing wantErr
		wantTEE  string
		wantErr  string
	}{
		{"auto, TDX configfs", TEEAuto, DeviceAuto, tdx(), false, DeviceConfigFS, TEETDX, ""},
		{"auto, TDX configfs and sev-guest", TEEAuto, DeviceAuto, tdx(), true, DeviceConfigFS, TEETDX, ""},
		{"auto, SNP configfs", TEEAuto, DeviceAuto, snp(), false, DeviceConfigFS, TEESEVSNP, ""},
		{"auto, sev-guest only", TEEAuto, DeviceAuto, nil, true, DeviceSEVGuest, TEESEVSNP, ""},
		{"auto, configfs forced, TDX", TEEAuto, DeviceConfigFS, tdx(), false, DeviceConfigFS, TEETDX, ""},
		{"auto, sev-guest forced", TEEAuto, DeviceSEVGuest, tdx(), true, DeviceSEVGuest, TEESEVSNP, ""},
		{"auto, other provider", TEEAuto, DeviceAuto, &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": faketsm.ReportV7(0)}}, false, "", "", `"provider"`},
		{"auto, nothing", TEEAuto, DeviceAuto, nil, false, "", "", "no SEV-SNP guest device"},
		{"tdx", TEETDX, DeviceAuto, tdx(), true, DeviceConfigFS, TEETDX, ""},
		{"tdx, configfs", TEETDX, DeviceConfigFS, tdx(), false, DeviceConfigFS, TEETDX, ""},
		{"tdx on an SNP configfs", TEETDX, DeviceAuto, snp(), true, "", "", `provider is "sev_guest", not "tdx_guest": not a TDX guest`},
		{"tdx, sev-guest kind", TEETDX, DeviceSEVGuest, tdx(), true, "", "", `not device kind "sev-guest"`},
		{"tdx, no configfs", TEETDX, DeviceAuto, nil, true, "", "", "tsm/report does not exist (is this a TDX guest?"},
		{"sev-snp on a TDX configfs", TEESEVSNP, DeviceConfigFS, tdx(), false, "", "", `"tdx_guest", not "sev_guest"`},
		{"unknown TEE", "cca", DeviceAuto, snp(), true, "", "", `unknown TEE "cca"`},
	} {
		var sev client.Device
		if tc.sev {
			sev = fakeSEVGuest(t, rd)
		}
		d, err := testOpener(t, tc.tsm, sev).open(tc.kind, WithTEE(tc.tee))
		if tc.wantKind == "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want one containing %q", tc.name, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if d.Kind() != tc.wantKind || d.TEE() != tc.wantTEE || TEEOf(d) != tc.wantTEE {
			t.Errorf("%s: opened %s %s, want %s %s", tc.name, d.Kind(), d.TEE(), tc.wantKind, tc.wantTEE)
		}
		rep, table, err := d.Report(context.Background(), rd)
		if err != nil || len(rep) < 0x90 || !bytes.Equal(rep[0x50:0x90], rd[:]) {
			t.Errorf("%s: Report() = %v", tc.name, err)
		}
		if tc.wantTEE == TEETDX && (table != nil || len(rep) != 5000) {
			t.Errorf("%s: a TDX quote of %d bytes with table %q, want the whole outblob and no table", tc.name, len(rep), table)
		}
		d.Close()
	}
}

// A TDX configfs device refuses an outblob too short to be a quote and
// another provider's answer.
func TestConfigFSDeviceTDX(t *testing.T) {
	rd := testReportData(6)
	for _, tc := range []struct {
		name string
		c    configfsi.Client
		want string
	}{
		{"short outblob", fakeTSM("tdx_guest", 47, nil), "outblob is 47 bytes, too short for a TDX quote"},
		{"SEV-SNP provider", fakeTSM("sev_guest", abi.ReportSize, nil), `not "tdx_guest"`},
	} {
		rep, _, err := NewConfigFSDevice(tc.c, WithTEE(TEETDX)).Report(context.Background(), rd)
		if err == nil || !strings.Contains(err.Error(), tc.want) || rep != nil {
			t.Errorf("%s: %d bytes, %v; want %q", tc.name, len(rep), err, tc.want)
		}
	}
	// A TD has no VMPL: no privilege level is written for a TDX quote.
	rep, _, err := NewConfigFSDevice(fakeTSM("tdx_guest", 1000, nil), WithTEE(TEETDX), WithVMPL(2)).Report(context.Background(), rd)
	if err != nil || rep[0x30] != 0 {
		t.Errorf("TDX with WithVMPL(2): privlevel %d written, %v", rep[0x30], err)
	}
	if _, err := (opener{}).open(DeviceAuto, WithTEE("x")); err == nil || errors.Is(err, ErrNoDevice) {
		t.Errorf("unknown TEE: %v", err)
	}
}
