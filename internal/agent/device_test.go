package agent

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/faketsm"
	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/client"
	sevtest "github.com/google/go-sev-guest/testing"
)

// reportDataOf is REPORT_DATA (0x50–0x8F) of an SEV-SNP report, or nil if
// rep is not one.
func reportDataOf(rep []byte) []byte {
	if len(rep) != abi.ReportSize {
		return nil
	}
	return rep[0x50:0x90]
}

func testReportData(seed byte) [64]byte {
	var rd [64]byte
	for i := range rd {
		rd[i] = seed + byte(i)
	}
	return rd
}

// fakeTSM is go-configfs-tsm's fake report subsystem (generation tracking,
// privlevel checks) answering like an SEV-SNP provider: outblob is an
// outSize-byte report with VMPL at 0x30 and inblob at 0x50.
func fakeTSM(provider string, outSize int, aux []byte) *faketsm.Client {
	sub := faketsm.ReportV7(0)
	// ReportV7 only renders read-only attributes after a write; like the
	// kernel, let a fresh entry's provider be read (OpenDevice's probe).
	sub.MakeEntry = func() *faketsm.ReportEntry {
		return &faketsm.ReportEntry{
			InAttrs: map[string]*faketsm.ReportAttributeState{"privlevel": {Value: []byte("0\n")}, "inblob": {}},
			ROAttrs: map[string][]byte{"provider": []byte(provider + "\n")},
		}
	}
	sub.ReadAttr = func(e *faketsm.ReportEntry, attr string) ([]byte, error) {
		switch attr {
		case "provider":
			return []byte(provider + "\n"), nil
		case "auxblob":
			return aux, nil
		case "outblob":
			out := make([]byte, max(outSize, 0x90))
			lvl, err := configfsi.Kstrtouint(e.InAttrs["privlevel"].Value, 10, 2)
			if err != nil {
				return nil, err
			}
			binary.LittleEndian.PutUint32(out[0x30:], uint32(lvl))
			copy(out[0x50:0x90], e.InAttrs["inblob"].Value)
			return out[:outSize], nil
		}
		return nil, os.ErrNotExist
	}
	return &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": sub}}
}

func TestConfigFSDevice(t *testing.T) {
	ctx := context.Background()
	aux := []byte("GHCB GUID table")
	rd := testReportData(1)

	rep, table, err := NewConfigFSDevice(fakeTSM("sev_guest", abi.ReportSize, aux)).Report(ctx, rd)
	if err != nil {
		t.Fatal(err)
	}
	if got := reportDataOf(rep); !bytes.Equal(got, rd[:]) {
		t.Errorf("REPORT_DATA = %x, want %x", got, rd)
	}
	if binary.LittleEndian.Uint32(rep[0x30:]) != 0 {
		t.Errorf("default VMPL = %d, want 0", rep[0x30])
	}
	if !bytes.Equal(table, aux) {
		t.Errorf("cert table = %q, want the auxblob %q", table, aux)
	}

	// Privilege level, and an empty auxblob gives a nil table.
	rep, table, err = NewConfigFSDevice(fakeTSM("sev_guest", abi.ReportSize, nil), WithVMPL(2)).Report(ctx, rd)
	if err != nil {
		t.Fatal(err)
	}
	if got := binary.LittleEndian.Uint32(rep[0x30:]); got != 2 {
		t.Errorf("VMPL = %d, want 2", got)
	}
	if table != nil {
		t.Errorf("cert table = %q, want nil without an auxblob", table)
	}

	for _, tc := range []struct {
		name string
		c    configfsi.Client
		opts []DeviceOption
		want string
	}{
		{"TDX provider", fakeTSM("tdx_guest", abi.ReportSize, aux), nil, `"tdx_guest", not "sev_guest"`},
		{"faketsm's own provider", &faketsm.Client{Subsystems: map[string]configfsi.Client{"report": faketsm.ReportV7(0)}}, nil, `"fake"`},
		{"short outblob", fakeTSM("sev_guest", 1000, aux), nil, "outblob is 1000 bytes"},
		{"long outblob", fakeTSM("sev_guest", abi.ReportSize+1, aux), nil, "outblob is 1185 bytes"},
		{"VMPL 4", fakeTSM("sev_guest", abi.ReportSize, aux), []DeviceOption{WithVMPL(4)}, "out of range"},
	} {
		rep, _, err := NewConfigFSDevice(tc.c, tc.opts...).Report(ctx, rd)
		if err == nil || !strings.Contains(err.Error(), tc.want) || rep != nil {
			t.Errorf("%s: Report() = %d bytes, %v; want error containing %q", tc.name, len(rep), err, tc.want)
		}
	}

	cctx, cancel := context.WithCancel(ctx)
	cancel()
	sub := faketsm.ReportV7(0)
	if _, _, err := NewConfigFSDevice(&faketsm.Client{Subsystems: map[string]configfsi.Client{"report": sub}}).Report(cctx, rd); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Report error = %v, want context.Canceled", err)
	}
	if len(sub.Entries) != 0 {
		t.Errorf("cancelled Report created %d configfs entries", len(sub.Entries))
	}
}

// fakeSEVGuest is go-sev-guest's fake /dev/sev-guest, answering rd with a
// signed report carrying it, and the fake AMD certificate table.
func fakeSEVGuest(t *testing.T, rd [64]byte) *sevtest.Device {
	t.Helper()
	d, err := sevtest.TcDevice([]sevtest.TestCase{{Input: rd, Output: sevtest.TestRawReport(rd)}},
		&sevtest.DeviceOptions{Product: abi.DefaultSevProduct()})
	if err != nil {
		t.Fatal(err)
	}
	if err := d.Open("/dev/sev-guest"); err != nil {
		t.Fatal(err)
	}
	return d
}

func TestSEVGuestDevice(t *testing.T) {
	ctx := context.Background()
	rd := testReportData(7)
	fake := fakeSEVGuest(t, rd)
	if len(fake.Certs) == 0 {
		t.Fatal("fake device has no certificates")
	}
	dev := NewSEVGuestDevice(fake)

	rep, table, err := dev.Report(ctx, rd)
	if err != nil {
		t.Fatal(err)
	}
	if got := reportDataOf(rep); !bytes.Equal(got, rd[:]) {
		t.Errorf("REPORT_DATA = %x, want %x", got, rd)
	}
	if !bytes.Equal(table, fake.Certs) {
		t.Errorf("cert table is %d bytes, want the fake's %d", len(table), len(fake.Certs))
	}
	var ct abi.CertTable
	if err := ct.Unmarshal(table); err != nil {
		t.Errorf("cert table does not parse: %v", err)
	} else if _, err := ct.GetByGUIDString(abi.VcekGUID); err != nil {
		t.Errorf("cert table has no VCEK: %v", err)
	}

	// A host without certificates: plain report, nil table.
	fake.Certs = nil
	rep, table, err = dev.Report(ctx, rd)
	if err != nil {
		t.Fatal(err)
	}
	if got := reportDataOf(rep); !bytes.Equal(got, rd[:]) || table != nil {
		t.Errorf("without certs: REPORT_DATA %x, table %d bytes; want %x, nil", got, len(table), rd)
	}

	// The device is asked for the caller's reportData, not some other.
	if _, _, err := dev.Report(ctx, testReportData(8)); err == nil || !strings.Contains(err.Error(), "no response") {
		t.Errorf("unknown reportData: err = %v, want the fake's no-response error", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	if _, _, err := dev.Report(cctx, rd); !errors.Is(err, context.Canceled) {
		t.Errorf("cancelled Report error = %v, want context.Canceled", err)
	}
	if _, _, err := NewSEVGuestDevice(fake, WithVMPL(9)).Report(ctx, rd); err == nil || !strings.Contains(err.Error(), "out of range") {
		t.Errorf("VMPL 9: err = %v", err)
	}

	if dev.Kind() != DeviceSEVGuest {
		t.Errorf("Kind() = %q", dev.Kind())
	}
	if err := dev.Close(); err != nil {
		t.Fatal(err)
	}
	if err := fake.Close(); err == nil {
		t.Error("Close did not close the underlying device")
	}
}

// testOpener points the opener at paths under a temp dir, created when
// present, with injected fakes behind them.
func testOpener(t *testing.T, tsm configfsi.Client, sev client.Device) opener {
	dir := t.TempDir()
	o := opener{
		configfsPath: filepath.Join(dir, "tsm/report"),
		sevGuestPath: filepath.Join(dir, "sev-guest"),
		tsmClient:    func() (configfsi.Client, error) { return tsm, nil },
		sevDevice:    func(string) (client.Device, error) { return sev, nil },
	}
	if tsm != nil {
		if err := os.MkdirAll(o.configfsPath, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if sev != nil {
		if err := os.WriteFile(o.sevGuestPath, nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return o
}

func TestOpenerSelection(t *testing.T) {
	rd := testReportData(3)
	snp := func() configfsi.Client { return fakeTSM("sev_guest", abi.ReportSize, nil) }
	tdx := func() configfsi.Client { return fakeTSM("tdx_guest", abi.ReportSize, nil) }
	for _, tc := range []struct {
		name     string
		kind     string
		tsm      configfsi.Client
		sev      bool
		wantKind string // "" → error containing wantErr
		wantErr  string
	}{
		{"auto prefers configfs", DeviceAuto, snp(), true, DeviceConfigFS, ""},
		{"auto, configfs only", DeviceAuto, snp(), false, DeviceConfigFS, ""},
		{"auto, sev-guest only", DeviceAuto, nil, true, DeviceSEVGuest, ""},
		{"auto skips a TDX configfs", DeviceAuto, tdx(), true, DeviceSEVGuest, ""},
		{"auto, TDX configfs only", DeviceAuto, tdx(), false, "", `"tdx_guest", not "sev_guest"`},
		{"auto, nothing", DeviceAuto, nil, false, "", "no SEV-SNP guest device: neither "},
		{"configfs forced", DeviceConfigFS, snp(), true, DeviceConfigFS, ""},
		{"configfs forced, TDX", DeviceConfigFS, tdx(), true, "", `"tdx_guest"`},
		{"configfs forced, absent", DeviceConfigFS, nil, true, "", "tsm/report does not exist"},
		{"sev-guest forced", DeviceSEVGuest, snp(), true, DeviceSEVGuest, ""},
		{"sev-guest forced, absent", DeviceSEVGuest, snp(), false, "", "sev-guest does not exist"},
		{"unknown kind", "tpm", snp(), true, "", `unknown device kind "tpm"`},
		{"empty kind", "", snp(), true, "", "unknown device kind"},
	} {
		var sev client.Device
		if tc.sev {
			sev = fakeSEVGuest(t, rd)
		}
		d, err := testOpener(t, tc.tsm, sev).open(tc.kind)
		if tc.wantKind == "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%s: err = %v, want one containing %q", tc.name, err, tc.wantErr)
			}
			if tc.kind == DeviceAuto && !errors.Is(err, ErrNoDevice) {
				t.Errorf("%s: err = %v, not ErrNoDevice", tc.name, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: %v", tc.name, err)
			continue
		}
		if d.Kind() != tc.wantKind {
			t.Errorf("%s: opened %s, want %s", tc.name, d.Kind(), tc.wantKind)
		}
		if rep, _, err := d.Report(context.Background(), rd); err != nil || !bytes.Equal(reportDataOf(rep), rd[:]) {
			t.Errorf("%s: Report() = %v", tc.name, err)
		}
		if err := d.Close(); err != nil {
			t.Errorf("%s: Close: %v", tc.name, err)
		}
		if c, ok := tc.tsm.(*faketsm.Client); ok {
			if n := len(c.Subsystems["report"].(*faketsm.ReportSubsystem).Entries); n != 0 {
				t.Errorf("%s: %d configfs report entries left behind", tc.name, n)
			}
		}
	}
}

func TestOpenDevice(t *testing.T) {
	if _, err := OpenDevice("bogus"); err == nil || !strings.Contains(err.Error(), `unknown device kind "bogus"`) {
		t.Errorf("OpenDevice(bogus) error = %v", err)
	}
	d, err := OpenDevice(DeviceAuto)
	for _, p := range []string{"/sys/kernel/config/tsm/report", "/dev/sev-guest"} {
		if _, serr := os.Stat(p); serr == nil {
			if err == nil {
				d.Close()
			}
			t.Skipf("%s exists here; not asserting the no-device error", p)
		}
	}
	const want = "no SEV-SNP guest device: neither /sys/kernel/config/tsm/report nor /dev/sev-guest exists (is this an SEV-SNP guest? Linux 6.7+ or the sev-guest module?)"
	if err == nil || err.Error() != want || !errors.Is(err, ErrNoDevice) {
		t.Errorf("OpenDevice(auto) error = %v, want %q", err, want)
	}
}
