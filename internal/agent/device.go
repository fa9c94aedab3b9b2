package agent

import (
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"
	"sync"

	"github.com/google/go-configfs-tsm/configfs/configfsi"
	"github.com/google/go-configfs-tsm/configfs/linuxtsm"
	"github.com/google/go-configfs-tsm/report"
	"github.com/google/go-sev-guest/abi"
	"github.com/google/go-sev-guest/client"
)

// Device kinds accepted by OpenDevice.
const (
	DeviceAuto     = "auto"      // configfs-tsm if it is an SEV-SNP provider, else /dev/sev-guest
	DeviceConfigFS = "configfs"  // /sys/kernel/config/tsm/report (Linux 6.7+)
	DeviceSEVGuest = "sev-guest" // /dev/sev-guest ioctls
)

// ErrNoDevice is wrapped by OpenDevice's error when "auto" finds no usable
// SEV-SNP guest device.
var ErrNoDevice = errors.New("no SEV-SNP guest device")

// configfs-tsm provider names of the SEV-SNP and TDX guest drivers.
const (
	sevGuestProvider = "sev_guest"
	tdxGuestProvider = "tdx_guest"
)

// TEE choices of WithTEE.
const (
	TEEAuto   = "auto"    // what configfs-tsm's provider says (sev_guest or tdx_guest), else /dev/sev-guest
	TEESEVSNP = "sev-snp" // an SEV-SNP report (the default)
	TEETDX    = "tdx"     // a TDX quote, through configfs-tsm
	TEENitro  = "nitro"   // an AWS Nitro Enclaves attestation document, from the NSM (/dev/nsm; OpenNSM)
	// Azure confidential VMs: the HCL report and a quote of the vTPM
	// (SPEC "Azure confidential VMs").
	TEEAzureSNP = "azure-snp"
	TEEAzureTDX = "azure-tdx"
)

// GuestDevice is a Device backed by the guest kernel. Close releases it.
type GuestDevice interface {
	Device
	io.Closer
	// Kind is DeviceConfigFS or DeviceSEVGuest.
	Kind() string
	// TEE is TEESEVSNP or TEETDX: what Report returns.
	TEE() string
}

// DeviceOption configures a GuestDevice.
type DeviceOption func(*deviceConfig)

type deviceConfig struct {
	vmpl *uint  // nil: VMPL 0 (for configfs-tsm, the kernel's default privlevel)
	tee  string // "" means TEESEVSNP
}

// WithTEE chooses the TEE: TEESEVSNP (the default), TEETDX (configfs-tsm
// with the tdx_guest provider; Report returns a quote and no certificate
// table) or TEEAuto (configfs-tsm's provider decides, else /dev/sev-guest).
func WithTEE(tee string) DeviceOption {
	return func(c *deviceConfig) { c.tee = tee }
}

// WithVMPL requests reports at the given VMPL (0–3; configfs-tsm privlevel)
// instead of the default 0.
func WithVMPL(vmpl uint) DeviceOption {
	return func(c *deviceConfig) { c.vmpl = &vmpl }
}

func newConfig(opts []DeviceOption) deviceConfig {
	var c deviceConfig
	for _, o := range opts {
		o(&c)
	}
	return c
}

// level returns the requested VMPL, refusing values SEV-SNP does not have.
func (c deviceConfig) level() (uint, error) {
	if c.vmpl == nil {
		return 0, nil
	}
	if *c.vmpl > 3 {
		return 0, fmt.Errorf("VMPL %d out of range 0-3", *c.vmpl)
	}
	return *c.vmpl, nil
}

// ConfigFSDevice gets reports through configfs-tsm
// (/sys/kernel/config/tsm/report, Linux 6.7+). Safe for concurrent use:
// every report is its own configfs entry.
type ConfigFSDevice struct {
	client configfsi.Client
	cfg    deviceConfig
	tee    string // TEESEVSNP or TEETDX
}

// NewConfigFSDevice returns a Device over a configfs-tsm client (linuxtsm's,
// or go-configfs-tsm's faketsm in tests), of the TEE WithTEE names
// (TEESEVSNP unless TEETDX).
func NewConfigFSDevice(c configfsi.Client, opts ...DeviceOption) *ConfigFSDevice {
	cfg := newConfig(opts)
	tee := TEESEVSNP
	if cfg.tee == TEETDX {
		tee = TEETDX
	}
	return &ConfigFSDevice{client: c, cfg: cfg, tee: tee}
}

// Report implements Device: outblob is the report, auxblob the certificate
// table (nil when the host provides none); for TDX outblob is the quote.
func (d *ConfigFSDevice) Report(ctx context.Context, reportData [64]byte) ([]byte, []byte, error) {
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	req := &report.Request{InBlob: reportData[:], GetAuxBlob: d.tee == TEESEVSNP}
	if d.cfg.vmpl != nil && d.tee == TEESEVSNP { // a TD has no VMPL
		lvl, err := d.cfg.level()
		if err != nil {
			return nil, nil, err
		}
		req.Privilege = &report.Privilege{Level: lvl}
	}
	resp, err := report.Get(d.client, req)
	if err != nil {
		return nil, nil, fmt.Errorf("configfs-tsm report: %w", err)
	}
	if err := checkProvider(resp.Provider, d.tee); err != nil {
		return nil, nil, err
	}
	if d.tee == TEETDX {
		if len(resp.OutBlob) < tdxQuoteHeader {
			return nil, nil, fmt.Errorf("configfs-tsm outblob is %d bytes, too short for a TDX quote", len(resp.OutBlob))
		}
		return resp.OutBlob, nil, nil
	}
	if len(resp.OutBlob) != abi.ReportSize {
		return nil, nil, fmt.Errorf("configfs-tsm outblob is %d bytes, want a %d-byte SEV-SNP report", len(resp.OutBlob), abi.ReportSize)
	}
	return resp.OutBlob, nonEmpty(resp.AuxBlob), nil
}

// Close implements GuestDevice; configfs-tsm holds nothing open.
func (d *ConfigFSDevice) Close() error { return nil }

// Kind implements GuestDevice.
func (d *ConfigFSDevice) Kind() string { return DeviceConfigFS }

// TEE implements GuestDevice.
func (d *ConfigFSDevice) TEE() string { return d.tee }

// tdxQuoteHeader is the size of a TDX quote's header, the least outblob
// that can be one.
const tdxQuoteHeader = 48

// checkProvider refuses configfs-tsm providers other than the one of tee
// (sev_guest for SEV-SNP, tdx_guest for TDX): their outblob is not what the
// verifier is told it is.
func checkProvider(p, tee string) error {
	want, what := sevGuestProvider, "an SEV-SNP guest"
	if tee == TEETDX {
		want, what = tdxGuestProvider, "a TDX guest"
	}
	if p = strings.TrimSpace(p); p != want {
		return fmt.Errorf("configfs-tsm provider is %q, not %q: not %s", p, want, what)
	}
	return nil
}

// probeProvider reads the provider of a fresh, unused report entry.
func probeProvider(c configfsi.Client) (string, error) {
	r, err := report.CreateOpenReport(c)
	if err != nil {
		return "", fmt.Errorf("configfs-tsm: %w (root needed)", err)
	}
	p, err := r.ReadOption("provider")
	if err = errors.Join(err, r.Destroy()); err != nil {
		return "", fmt.Errorf("configfs-tsm: %w", err)
	}
	return strings.TrimSpace(string(p)), nil
}

// SEVGuestDevice gets reports through /dev/sev-guest ioctls. Calls are
// serialised: the device is not safe for concurrent use.
type SEVGuestDevice struct {
	mu  sync.Mutex
	dev client.Device
	cfg deviceConfig
}

// NewSEVGuestDevice returns a Device over an already open go-sev-guest
// device (client.LinuxDevice, or go-sev-guest/testing's fake in tests).
// Close closes it.
func NewSEVGuestDevice(d client.Device, opts ...DeviceOption) *SEVGuestDevice {
	return &SEVGuestDevice{dev: d, cfg: newConfig(opts)}
}

// Report implements Device with an extended report; when the host does not
// support it (or has no certificates) it falls back to a plain report with a
// nil certificate table. The ioctls themselves cannot be interrupted, so ctx
// is checked before each of them.
//
// go-sev-guest marks these raw-device helpers deprecated in favour of its
// QuoteProvider, which cannot take an injected device.
func (d *SEVGuestDevice) Report(ctx context.Context, reportData [64]byte) ([]byte, []byte, error) {
	vmpl, err := d.cfg.level()
	if err != nil {
		return nil, nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	rep, certs, extErr := client.GetRawExtendedReportAtVmpl(d.dev, reportData, int(vmpl))
	if extErr == nil && len(rep) == abi.ReportSize {
		return rep, nonEmpty(certs), nil
	}
	// go-sev-guest returns a nil report without error when the host has no
	// certificates (zero certificate length); treat it as unsupported too.
	if err := ctx.Err(); err != nil {
		return nil, nil, err
	}
	rep, err = client.GetRawReportAtVmpl(d.dev, reportData, int(vmpl))
	if err != nil {
		if extErr != nil {
			err = errors.Join(fmt.Errorf("extended report: %w", extErr), err)
		}
		return nil, nil, fmt.Errorf("sev-guest report: %w", err)
	}
	if len(rep) != abi.ReportSize {
		return nil, nil, fmt.Errorf("sev-guest report is %d bytes, want %d", len(rep), abi.ReportSize)
	}
	return rep, nil, nil
}

// Close implements GuestDevice by closing the underlying device.
func (d *SEVGuestDevice) Close() error {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.dev.Close()
}

// Kind implements GuestDevice.
func (d *SEVGuestDevice) Kind() string { return DeviceSEVGuest }

// TEE implements GuestDevice.
func (d *SEVGuestDevice) TEE() string { return TEESEVSNP }

func nonEmpty(b []byte) []byte {
	if len(b) == 0 {
		return nil
	}
	return b
}

// opener finds and opens guest devices; tests replace its paths and
// constructors.
type opener struct {
	configfsPath, sevGuestPath string
	tsmClient                  func() (configfsi.Client, error)
	sevDevice                  func(path string) (client.Device, error)
}

var hostOpener = opener{
	configfsPath: configfsi.TsmPrefix + "/report",
	sevGuestPath: "/dev/sev-guest",
	tsmClient:    linuxtsm.MakeClient,
	sevDevice:    openSEVGuest, // device_linux.go / device_other.go
}

// OpenDevice opens the guest's SEV-SNP device of the given kind: DeviceAuto
// (configfs-tsm when /sys/kernel/config/tsm/report exists with the sev_guest
// provider, else /dev/sev-guest), DeviceConfigFS or DeviceSEVGuest. With
// WithTEE(TEETDX) it opens configfs-tsm with the tdx_guest provider (kind
// auto or configfs); with WithTEE(TEEAuto) a tdx_guest provider gives a TDX
// device, sev_guest an SEV-SNP one, and without either /dev/sev-guest. The
// caller closes the returned device.
func OpenDevice(kind string, opts ...DeviceOption) (GuestDevice, error) {
	return hostOpener.open(kind, opts...)
}

func (o opener) open(kind string, opts ...DeviceOption) (GuestDevice, error) {
	switch tee := newConfig(opts).tee; tee {
	case "", TEESEVSNP:
	case TEETDX:
		if kind != DeviceAuto && kind != DeviceConfigFS {
			return nil, fmt.Errorf("a TDX guest's quotes come from configfs-tsm, not device kind %q", kind)
		}
		if !exists(o.configfsPath) {
			return nil, fmt.Errorf("%w: %s does not exist (is this a TDX guest? Linux 6.7+ with configfs mounted?)", ErrNoDevice, o.configfsPath)
		}
		return o.configfs(opts)
	case TEEAuto:
		if kind != DeviceSEVGuest && exists(o.configfsPath) {
			if d, err := o.configfs(append(opts, WithTEE(TEETDX))); err == nil {
				return d, nil
			}
		}
		opts = append(opts, WithTEE(TEESEVSNP))
	default:
		return nil, fmt.Errorf("unknown TEE %q (want %q, %q or %q)", tee, TEEAuto, TEESEVSNP, TEETDX)
	}
	switch kind {
	case DeviceConfigFS:
		return o.configfs(opts)
	case DeviceSEVGuest:
		return o.sevGuest(opts)
	case DeviceAuto:
	default:
		return nil, fmt.Errorf("unknown device kind %q (want %q, %q or %q)", kind, DeviceAuto, DeviceConfigFS, DeviceSEVGuest)
	}
	cfsExists, sevExists := exists(o.configfsPath), exists(o.sevGuestPath)
	if !cfsExists && !sevExists {
		return nil, fmt.Errorf("%w: neither %s nor %s exists (is this an SEV-SNP guest? Linux 6.7+ or the sev-guest module?)",
			ErrNoDevice, o.configfsPath, o.sevGuestPath)
	}
	var cfsErr error
	if cfsExists {
		d, err := o.configfs(opts)
		if err == nil || !sevExists {
			if err != nil {
				err = fmt.Errorf("%w: %w, and %s does not exist", ErrNoDevice, err, o.sevGuestPath)
			}
			return d, err
		}
		cfsErr = err // e.g. another provider (TDX): try /dev/sev-guest
	}
	d, err := o.sevGuest(opts)
	if err != nil && cfsErr != nil {
		err = fmt.Errorf("%w: %w", ErrNoDevice, errors.Join(cfsErr, err))
	}
	return d, err
}

func (o opener) configfs(opts []DeviceOption) (GuestDevice, error) {
	if !exists(o.configfsPath) {
		return nil, fmt.Errorf("configfs-tsm: %s does not exist (needs Linux 6.7+ with configfs mounted)", o.configfsPath)
	}
	c, err := o.tsmClient()
	if err != nil {
		return nil, fmt.Errorf("configfs-tsm: %w", err)
	}
	p, err := probeProvider(c)
	if err != nil {
		return nil, err
	}
	d := NewConfigFSDevice(c, opts...)
	if err := checkProvider(p, d.tee); err != nil {
		return nil, err
	}
	return d, nil
}

func (o opener) sevGuest(opts []DeviceOption) (GuestDevice, error) {
	if !exists(o.sevGuestPath) {
		return nil, fmt.Errorf("sev-guest: %s does not exist (is this an SEV-SNP guest with the sev-guest module loaded?)", o.sevGuestPath)
	}
	d, err := o.sevDevice(o.sevGuestPath)
	if err != nil {
		return nil, fmt.Errorf("sev-guest: %w", err)
	}
	return NewSEVGuestDevice(d, opts...), nil
}

// exists reports whether p is present; an unreadable path counts as present
// so that opening it reports the real error (e.g. permission denied).
func exists(p string) bool {
	_, err := os.Stat(p)
	return !errors.Is(err, fs.ErrNotExist)
}
