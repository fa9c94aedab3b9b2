//go:build linux

package agent

import "github.com/google/go-sev-guest/client"

// openSEVGuest opens the sev-guest ioctl device at path.
func openSEVGuest(path string) (client.Device, error) {
	d := &client.LinuxDevice{}
	if err := d.Open(path); err != nil {
		return nil, err
	}
	return d, nil
}
