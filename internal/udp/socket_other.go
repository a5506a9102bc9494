//go:build !linux

package udp

import (
	"syscall"

	"golang.org/x/sys/unix"
)

// socket opens a non-blocking, close-on-exec UDP socket of the address
// family family (in two steps where socket(2) takes no such flags; the
// fork lock keeps a concurrent exec from inheriting it in between).
func socket(family int) (int, error) {
	syscall.ForkLock.RLock()
	fd, err := unix.Socket(family, unix.SOCK_DGRAM, 0)
	if err == nil {
		unix.CloseOnExec(fd)
	}
	syscall.ForkLock.RUnlock()
	if err != nil {
		return -1, err
	}
	if err := unix.SetNonblock(fd, true); err != nil {
		_ = unix.Close(fd)
		return -1, err
	}
	return fd, nil
}
