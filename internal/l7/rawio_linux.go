package l7

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// writeRaw writes p to fd, a non-blocking socket, with a raw system call.
// It is called inside RawConn callbacks, where the call cannot block: not
// telling the runtime of it saves a little on every call and keeps the
// runtime's monitor from handing the processor to another thread while
// this one is in the kernel (see internal/l4's receiver for the cost).
func writeRaw(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// readRaw reads into p from fd, a non-blocking socket, with a raw system
// call (see writeRaw). p must not be empty.
func readRaw(fd int, p []byte) (int, error) {
	n, _, e := unix.RawSyscall(unix.SYS_READ, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
