package agent

import (
	"context"
	"errors"
	"fmt"
	"os"
	"runtime"
	"sync"
	"syscall"
	"unsafe"

	"github.com/fxamacker/cbor/v2"
)

// The Nitro Secure Module's one ioctl (AWS Nitro Enclaves NSM API, the
// Linux nsm driver): NSM_IOCTL_REQUEST = _IOWR(0x0A, 0, struct nsm_message)
// on /dev/nsm, where struct nsm_message is two struct iovec, the CBOR
// request and the buffer for the CBOR response, whose length the driver
// sets to what it wrote.
const (
	// DefaultNSMPath is the NSM device of an enclave.
	DefaultNSMPath = "/dev/nsm"
	// DeviceNSM is the Kind of an NSMDevice.
	DeviceNSM = "nsm"

	nsmIoctlRequest    = 3<<30 | 32<<16 | 0x0A<<8 // _IOWR(0x0A, 0, 32 bytes)
	nsmResponseMaxSize = 0x3000                   // the driver's limit
)

// nsmMessage is struct nsm_message on 64-bit Linux.
type nsmMessage struct {
	reqBase  uintptr
	reqLen   uint64
	respBase uintptr
	respLen  uint64
}

// NSMDevice is a Device over an enclave's NSM: Report returns the
// attestation document whose nonce is REPORT_DATA. Close releases it.
type NSMDevice struct {
	f *os.File
	// exchange sends one CBOR request and returns the CBOR response; the
	// ioctl on f unless a test sets it.
	exchange func(req []byte) ([]byte, error)
	mu       sync.Mutex
}

// OpenNSM opens the NSM device at path ("" means DefaultNSMPath).
func OpenNSM(path string) (*NSMDevice, error) {
	if path == "" {
		path = DefaultNSMPath
	}
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if err != nil {
		return nil, fmt.Errorf("NSM device: %w", err)
	}
	d := &NSMDevice{f: f}
	d.exchange = d.ioctl
	return d, nil
}

func (d *NSMDevice) ioctl(req []byte) ([]byte, error) {
	resp := make([]byte, nsmResponseMaxSize)
	msg := nsmMessage{reqBase: uintptr(unsafe.Pointer(&req[0])), reqLen: uint64(len(req)),
		respBase: uintptr(unsafe.Pointer(&resp[0])), respLen: uint64(len(resp))}
	sc, err := d.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var errno syscall.Errno
	if err := sc.Control(func(fd uintptr) {
		_, _, errno = syscall.Syscall(syscall.SYS_IOCTL, fd, nsmIoctlRequest, uintptr(unsafe.Pointer(&msg)))
	}); err != nil {
		return nil, err
	}
	runtime.KeepAlive(req) // the kernel read it through msg
	if errno != 0 {
		return nil, fmt.Errorf("NSM ioctl: %w", errno)
	}
	if msg.respLen > uint64(len(resp)) {
		return nil, fmt.Errorf("NSM response of %d bytes exceeds %d", msg.respLen, len(resp))
	}
	return resp[:msg.respLen], nil
}

// nsmAttestation is the NSM's Attestation request (user_data and
// public_key null).
type nsmAttestation struct {
	UserData  []byte `cbor:"user_data"`
	Nonce     []byte `cbor:"nonce"`
	PublicKey []byte `cbor:"public_key"`
}

// Report implements Device: the NSM's attestation document with nonce rd.
func (d *NSMDevice) Report(_ context.Context, rd [64]byte) ([]byte, []byte, error) {
	req, err := cbor.Marshal(map[string]nsmAttestation{"Attestation": {Nonce: rd[:]}})
	if err != nil {
		return nil, nil, err
	}
	d.mu.Lock()
	raw, err := d.exchange(req)
	d.mu.Unlock()
	if err != nil {
		return nil, nil, err
	}
	var resp map[string]cbor.RawMessage
	if err := cbor.Unmarshal(raw, &resp); err != nil {
		return nil, nil, fmt.Errorf("NSM response: %w", err)
	}
	if e, ok := resp["Error"]; ok {
		var code string
		if cbor.Unmarshal(e, &code) != nil {
			code = "unreadable"
		}
		return nil, nil, fmt.Errorf("NSM refused the attestation: %s", code)
	}
	var att struct {
		Document []byte `cbor:"document"`
	}
	if a, ok := resp["Attestation"]; !ok || cbor.Unmarshal(a, &att) != nil || len(att.Document) == 0 {
		return nil, nil, errors.New("NSM response holds no attestation document")
	}
	return att.Document, nil, nil
}

// TEE says the device gives Nitro attestation documents.
func (*NSMDevice) TEE() string { return TEENitro }

// Kind is DeviceNSM.
func (*NSMDevice) Kind() string { return DeviceNSM }

// Close releases the device.
func (d *NSMDevice) Close() error {
	if d.f == nil {
		return nil
	}
	return d.f.Close()
}
