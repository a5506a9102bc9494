//go:build !linux

package l7

import "golang.org/x/sys/unix"

// writeRaw writes p to fd, a non-blocking socket.
func writeRaw(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	return unix.Write(fd, p)
}

// readRaw reads into p from fd, a non-blocking socket.
func readRaw(fd int, p []byte) (int, error) { return unix.Read(fd, p) }
