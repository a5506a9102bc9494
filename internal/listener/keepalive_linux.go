package listener

import (
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// keepAliveOnListener sets the keep-alive options on a listening TCP
// socket. Linux copies them to every connection it accepts, so they cost
// four setsockopt calls once instead of for every connection.
func keepAliveOnListener(_, _ string, c syscall.RawConn) error {
	var serr error
	err := c.Control(func(fd uintptr) {
		for _, o := range []struct{ level, opt, v int }{
			{unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1},
			{unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, int(KeepAlive.Idle / time.Second)},
			{unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, int(KeepAlive.Interval / time.Second)},
			{unix.IPPROTO_TCP, unix.TCP_KEEPCNT, KeepAlive.Count},
		} {
			if serr = unix.SetsockoptInt(int(fd), o.level, o.opt, o.v); serr != nil {
				return
			}
		}
	})
	if err != nil {
		return err
	}
	return serr
}

// inheritsKeepAlive says that accepted connections inherit the listening
// socket's keep-alive options.
const inheritsKeepAlive = true
