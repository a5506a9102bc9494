package l7

import (
	"fmt"
	"io"
	"net"
	"syscall"
)

// upIO is the source of an upstream connection's reader and the
// destination of its writer. On a plain TCP connection it lets the last
// write of a request wait for the first read of the response (hold), so
// that both are done in one RawConn.Read call: the request is written
// inside the call's callback, which then waits for readiness instead of
// trying a read that would fail with EAGAIN right after. That is sound
// only within one call: the runtime forgets the socket's readiness when a
// RawConn.Read call starts, and keeps what arrives from then on. The
// server has seen no byte of the request before that write (hold is used
// only then), so nothing it sends in answer can have arrived earlier.
type upIO struct {
	c    net.Conn
	rc   syscall.RawConn // nil unless c is plain TCP
	fn   func(fd uintptr) bool
	hold bool // a Write is kept in pending instead of being written
	sent bool // a Write reached the connection since the last reset

	// bytes counts what was written (in) and read (out), for the real
	// server's counters; a held write counts when it is held.
	bytes byteMeter

	pending []byte // request bytes held for the next Read; aliases the writer's buffer
	p       []byte // the current Read's buffer
	n       int
	err     error

	// broke is set when a Read failed (an end of file included): the
	// server's side broke off if the exchange then fails.
	broke bool
}

// init sets x up for c; raw is c when c is plain TCP, else nil.
func (x *upIO) init(c net.Conn, raw *net.TCPConn) {
	x.c = c
	if raw != nil && c == net.Conn(raw) {
		if rc, err := raw.SyscallConn(); err == nil {
			x.rc = rc
			x.fn = x.callback
		}
	}
}

// Write writes p, or with hold keeps it for the next Read.
func (x *upIO) Write(p []byte) (int, error) {
	if x.hold {
		x.pending = p
		x.bytes.in += int64(len(p))
		return len(p), nil
	}
	x.sent = true
	n, err := x.c.Write(p)
	x.bytes.in += int64(n)
	return n, err
}

// Read writes the held request bytes, if any, then reads.
func (x *upIO) Read(p []byte) (int, error) {
	n, err := x.read(p)
	x.bytes.out += int64(n)
	if err != nil {
		x.broke = true
	}
	return n, err
}

func (x *upIO) read(p []byte) (int, error) {
	if len(x.pending) == 0 {
		return x.c.Read(p)
	}
	x.p, x.n, x.err = p, 0, nil
	err := x.rc.Read(x.fn)
	x.p = nil
	if err != nil {
		x.pending = nil
		return 0, err
	}
	if x.err != nil {
		x.pending = nil
		return 0, x.err
	}
	if len(x.pending) > 0 {
		// A write that would block is finished here, outside the
		// callback: Close must never wait for it. The read that
		// follows starts with a read, as the readiness is forgotten.
		_, err := x.c.Write(x.pending)
		x.pending = nil
		if err != nil {
			return 0, err
		}
		return x.c.Read(p)
	}
	if x.n == 0 {
		return 0, io.EOF
	}
	return x.n, nil
}

// callback is the RawConn.Read callback of Read: write what is held, then
// wait for readiness, then read.
func (x *upIO) callback(fd uintptr) bool {
	if len(x.pending) > 0 {
		for len(x.pending) > 0 {
			k, err := writeRaw(int(fd), x.pending)
			switch err {
			case nil:
				x.pending = x.pending[k:]
			case syscall.EINTR:
			case syscall.EAGAIN:
				return true
			default:
				x.err = fmt.Errorf("write to real server: %w", err)
				return true
			}
		}
		return false // the request is out: wait for its answer
	}
	for {
		k, err := readRaw(int(fd), x.p)
		switch err {
		case nil:
			x.n = k
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			x.err = fmt.Errorf("read from real server: %w", err)
			return true
		}
	}
}

// flushLast flushes the last bytes of a request in u's writer. When
// nothing of the request reached the connection before (u.io.sent is
// false) they are held and written by the read of the response.
func (u *upConn) flushLast() error {
	if u.io.rc == nil || u.io.sent {
		return u.bw.Flush()
	}
	u.io.hold = true
	err := u.bw.Flush()
	u.io.hold = false
	return err
}
