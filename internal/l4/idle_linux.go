package l4

import (
	"net"
	"time"

	"golang.org/x/sys/unix"
)

// sinceActivity returns how long ago c last sent or received data, from the
// kernel's TCP_INFO (tcpi_last_data_recv and tcpi_last_data_sent, in
// milliseconds). Both are set when the connection is established, so a new
// connection that has carried nothing yet counts from its handshake.
func sinceActivity(c *net.TCPConn) (time.Duration, error) {
	info, err := tcpInfo(c)
	if err != nil {
		return 0, err
	}
	ms := min(info.Last_data_recv, info.Last_data_sent)
	return time.Duration(ms) * time.Millisecond, nil
}

// tcpInfo reads c's TCP_INFO.
func tcpInfo(c *net.TCPConn) (*unix.TCPInfo, error) {
	rc, err := c.SyscallConn()
	if err != nil {
		return nil, err
	}
	var info *unix.TCPInfo
	var serr error
	if err := rc.Control(func(fd uintptr) {
		info, serr = unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO)
	}); err != nil {
		return nil, err
	}
	return info, serr
}

// bytesAcked returns the bytes c has sent that its peer acknowledged
// (tcpi_bytes_acked): never more than what was written to c.
func bytesAcked(c *net.TCPConn) (int64, error) {
	info, err := tcpInfo(c)
	if err != nil {
		return 0, err
	}
	return int64(info.Bytes_acked), nil
}
