//go:build !linux

package l4

import "syscall"

// receiver reads from a socket; outside Linux it cannot tell whether more
// is waiting, so the copy loop reads until EAGAIN.
type receiver struct{}

// recv reads into p from fd; more is always true.
func (*receiver) recv(fd int, p []byte) (n int, more bool, err error) {
	for {
		n, err = syscall.Read(fd, p)
		if err != syscall.EINTR {
			return n, true, err
		}
	}
}

// setInq does nothing outside Linux.
func setInq(int) error { return nil }

// writeRaw writes p to fd.
func writeRaw(fd int, p []byte) (int, error) { return syscall.Write(fd, p) }
