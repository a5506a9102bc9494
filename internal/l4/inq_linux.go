package l4

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// inqSpace is the room for one TCP_CM_INQ control message (an int).
var inqSpace = unix.CmsgSpace(4)

// receiver reads from a socket with TCP_INQ set (see setInq): every read
// also tells whether more is waiting in the socket (data or the peer's
// FIN), so that the copy loop can wait for readiness after a read that
// emptied the socket instead of trying another read that would fail with
// EAGAIN. Its message header lives as long as the copy, so a read
// allocates nothing.
type receiver struct {
	msg unix.Msghdr
	iov unix.Iovec
	oob [32]byte
}

// recv reads into p from fd, a non-blocking socket. It is a raw system
// call: the runtime is not told of it, as it cannot block; telling it costs
// a little on every read and, worse, lets the runtime's monitor take the
// processor away from a thread caught in the call (the thread is hardly
// ever descheduled in a read, but a busy machine does it), which wakes
// another thread: context switches HAProxy, one thread, does not pay.
// more is false only when the kernel said the
// socket is now empty and the peer has not closed; without the kernel's
// word (TCP_INQ not set, an older kernel) it is true.
func (r *receiver) recv(fd int, p []byte) (n int, more bool, err error) {
	r.iov.Base = &p[0]
	r.iov.SetLen(len(p))
	r.msg.Iov = &r.iov
	r.msg.SetIovlen(1)
	r.msg.Control = &r.oob[0]
	r.msg.SetControllen(inqSpace)
	r.msg.Flags = 0
	for {
		m, _, e := unix.RawSyscall(unix.SYS_RECVMSG, uintptr(fd), uintptr(unsafe.Pointer(&r.msg)), 0)
		if e == syscall.EINTR {
			continue
		}
		if e != 0 {
			return 0, false, e
		}
		n = int(m)
		break
	}
	more = true
	if int(r.msg.Controllen) >= unix.CmsgLen(4) {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&r.oob[0]))
		if h.Level == unix.SOL_TCP && h.Type == unix.TCP_CM_INQ {
			more = *(*int32)(unsafe.Pointer(&r.oob[unix.CmsgLen(0)])) != 0
		}
	}
	return n, more, nil
}

// setInq asks the kernel to report, with every read, the bytes left in the
// socket (TCP_INQ, Linux 4.18+; a FIN counts as one). Best effort: without
// it the copy loop reads until EAGAIN.
func setInq(fd int) error {
	return unix.SetsockoptInt(fd, unix.SOL_TCP, unix.TCP_INQ, 1)
}

// writeRaw writes p to fd, a non-blocking socket, with a raw system call
// (see receiver.recv).
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
