package l4

import (
	"io"
	"net"
	"sync"
	"sync/atomic"
	"syscall"
)

// smallBuf is the size of the buffer of the user-space copy that a
// connection starts with.
const smallBuf = 16 << 10

// maxMessages bounds the messages copied in one RawConn.Read call while the
// source says more is waiting: the call holds the source, and a Close of
// it waits until the call returns.
const maxMessages = 16

// inqAfter is the message from which a direction asks the kernel whether
// more is waiting with every read (setInq): a connection that carries one
// message each way, the common short connection, does not pay for the
// setsockopt call, and a longer one saves a read per message from there on.
const inqAfter = 2

var smallPool = sync.Pool{New: func() any { b := make([]byte, smallBuf); return &b }}

// copyAdaptive copies src to dst until EOF (nil error) or an error, and
// returns the bytes written.
//
// It starts with a user-space copy, which costs fewer CPU cycles than
// splice(2) for small messages (a request/response protocol), and moves
// to io.Copy, which splices on Linux, at the first read that fills its
// buffer: a bulk transfer. The buffer is taken from a pool only once data
// is waiting (the wait for readiness holds none), so an idle connection
// holds no buffer.
//
// A small message costs one read and one write: reads tell whether the
// socket is now empty (see receiver), and after one that emptied it the
// loop waits for readiness without the read that would fail with EAGAIN.
// That is only sound while the runtime keeps the readiness that arrives
// meanwhile, that is within one RawConn.Read call (each call forgets it
// when it starts), so the write of a message is done inside that call too,
// without blocking: a write that would block is finished outside it (a
// blocked write must not hold src, which Close would wait for), and the
// next call starts with a read.
func copyAdaptive(dst, src *net.TCPConn) (written int64, err error) {
	rs, err := src.SyscallConn()
	if err != nil {
		return 0, err
	}
	rd, err := dst.SyscallConn()
	if err != nil {
		return 0, err
	}
	var (
		r       receiver
		bp      *[]byte // the message being written, from smallPool
		n, w    int     // its length, and how much of it is written
		eof     bool
		msgs    int // messages read, up to inqAfter
		full    bool
		rerr    error
		werr    error
		wrote   int
		writeFn = func(fd uintptr) bool {
			for w < n {
				k, e := writeRaw(int(fd), (*bp)[w:n])
				if e == syscall.EINTR {
					continue
				}
				if e != nil {
					if e != syscall.EAGAIN {
						werr = e
					}
					return true
				}
				w += k
			}
			return true
		}
	)
	readFn := func(fd uintptr) bool {
		for burst := 0; ; burst++ {
			if burst == maxMessages {
				return true // let RawConn.Read see a Close
			}
			bp = smallPool.Get().(*[]byte)
			var more bool
			n, more, rerr = r.recv(int(fd), *bp)
			if rerr == syscall.EAGAIN {
				smallPool.Put(bp)
				bp, rerr = nil, nil
				return false // wait for readiness
			}
			if rerr != nil || n <= 0 {
				eof = rerr == nil
				return true
			}
			if msgs < inqAfter {
				if msgs++; msgs == inqAfter {
					_ = setInq(int(fd)) // best effort
				}
			}
			w = 0
			if err := rd.Write(writeFn); err != nil && werr == nil {
				werr = err
			}
			wrote += w
			if werr != nil || w < n {
				return true // an error, or a write that would block
			}
			full = n == len(*bp)
			smallPool.Put(bp)
			bp = nil
			if full {
				return true
			}
			if !more {
				return false // the socket is empty: wait for readiness
			}
		}
	}
	for {
		wrote = 0
		err := rs.Read(readFn)
		written += int64(wrote)
		if err != nil {
			putBuf(bp)
			return written, err
		}
		switch {
		case werr != nil:
			putBuf(bp)
			return written, werr
		case rerr != nil || eof:
			putBuf(bp)
			return written, rerr // EOF: nil
		case full:
			m, err := io.Copy(dst, src)
			spliced.Add(m)
			return written + m, err
		case bp != nil && w < n: // finish a write that would block
			k, err := dst.Write((*bp)[w:n])
			written += int64(k)
			full = n == len(*bp)
			putBuf(bp)
			bp = nil
			if err != nil {
				return written, err
			}
			if full {
				m, err := io.Copy(dst, src)
				spliced.Add(m)
				return written + m, err
			}
		}
	}
}

// putBuf returns a buffer to smallPool; nil is ignored.
func putBuf(bp *[]byte) {
	if bp != nil {
		smallPool.Put(bp)
	}
}

// spliced counts the bytes copyAdaptive moved with io.Copy, which splices
// between two TCP sockets on Linux (through the Go runtime's pipes).
var spliced atomic.Int64

// SplicedBytes returns the bytes layer-4 services have moved with
// splice(2) since start, counted when each bulk copy ends.
func SplicedBytes() int64 { return spliced.Load() }
