package l4

import (
	"io"
	"net"
	"sync"
	"syscall"
)

// smallBuf is the size of the buffer of the user-space copy that a
// connection starts with.
const smallBuf = 16 << 10

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
func copyAdaptive(dst, src *net.TCPConn) (written int64, err error) {
	rc, err := src.SyscallConn()
	if err != nil {
		return 0, err
	}
	for {
		var bp *[]byte
		var n int
		var rerr error
		if err := rc.Read(func(fd uintptr) bool {
			bp = smallPool.Get().(*[]byte)
			for {
				n, rerr = syscall.Read(int(fd), *bp)
				if rerr != syscall.EINTR {
					break
				}
			}
			if rerr == syscall.EAGAIN {
				smallPool.Put(bp)
				bp = nil
				return false
			}
			return true
		}); err != nil {
			return written, err
		}
		if rerr != nil || n <= 0 {
			smallPool.Put(bp)
			return written, rerr // n == 0: EOF, rerr nil
		}
		w, werr := dst.Write((*bp)[:n])
		written += int64(w)
		full := n == len(*bp)
		smallPool.Put(bp)
		if werr != nil {
			return written, werr
		}
		if full {
			m, err := io.Copy(dst, src)
			return written + m, err
		}
	}
}
