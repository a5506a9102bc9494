//go:build linux

package udp

import "golang.org/x/sys/unix"

// socket opens a non-blocking, close-on-exec UDP socket of the address
// family family.
func socket(family int) (int, error) {
	return unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0)
}
