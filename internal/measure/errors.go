package measure

import "fmt"

// Kind classifies a measurement error so a caller can branch on it.
type Kind int

const (
	// KindInvalidOptions: the options are inconsistent or out of range
	// (zero vCPUs, unknown vCPU type or VMM, malformed hex, ...).
	KindInvalidOptions Kind = iota + 1
	// KindFirmware: the firmware image is unusable for SEV-SNP: no OVMF
	// footer table, no SEV metadata, or a malformed one.
	KindFirmware
	// KindNoHashesTable: a kernel was given but the firmware has no SEV
	// hashes table or no SNP_KERNEL_HASHES metadata section, so the kernel,
	// initrd and command line would not be measured.
	KindNoHashesTable
	// KindSVSM: the SVSM image is unusable (no footer table, metadata or
	// entry point).
	KindSVSM
)

// String names the kind.
func (k Kind) String() string {
	switch k {
	case KindInvalidOptions:
		return "invalid options"
	case KindFirmware:
		return "unusable firmware"
	case KindNoHashesTable:
		return "no kernel hashes table"
	case KindSVSM:
		return "unusable SVSM image"
	}
	return fmt.Sprintf("kind(%d)", int(k))
}

// Error is every error this package returns. Use errors.As and Kind to
// branch; Msg is a complete human-readable sentence fragment.
type Error struct {
	Kind Kind
	Msg  string
}

// Error implements error.
func (e *Error) Error() string { return e.Msg }

func errorf(k Kind, format string, args ...any) *Error {
	return &Error{Kind: k, Msg: fmt.Sprintf(format, args...)}
}
