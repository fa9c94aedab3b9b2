//go:build !linux

package agent

import (
	"fmt"

	"github.com/google/go-sev-guest/client"
)

// openSEVGuest fails: go-sev-guest's ioctl device (client.LinuxDevice) only
// exists for Linux and the BSDs, and SEV-SNP guests here run Linux.
func openSEVGuest(path string) (client.Device, error) {
	return nil, fmt.Errorf("%s: the sev-guest device is only supported on Linux", path)
}
