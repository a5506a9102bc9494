//go:build linux

package sockopt

import (
	"fmt"

	"golang.org/x/sys/unix"
)

// Set sets o on the socket fd, of the IPv6 family when v6.
func (o Options) Set(fd int, v6 bool) error {
	if o.Mark != 0 {
		if err := unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK, int(o.Mark)); err != nil {
			return fmt.Errorf("SO_MARK %#x: %w", o.Mark, err)
		}
	}
	if o.Transparent {
		level, opt, name := unix.IPPROTO_IP, unix.IP_TRANSPARENT, "IP_TRANSPARENT"
		if v6 {
			level, opt, name = unix.IPPROTO_IPV6, unix.IPV6_TRANSPARENT, "IPV6_TRANSPARENT"
		}
		if err := unix.SetsockoptInt(fd, level, opt, 1); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
	}
	if o.NoPort {
		_ = unix.SetsockoptInt(fd, unix.IPPROTO_IP, unix.IP_BIND_ADDRESS_NO_PORT, 1)
	}
	return nil
}

// Mark returns the SO_MARK of the socket fd.
func Mark(fd int) (uint32, error) {
	m, err := unix.GetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_MARK)
	if err != nil {
		return 0, fmt.Errorf("SO_MARK: %w", err)
	}
	return uint32(m), nil
}
