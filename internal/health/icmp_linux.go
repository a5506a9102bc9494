package health

import (
	"fmt"
	"net"
	"os"

	"golang.org/x/sys/unix"

	"github.com/fulcrum-lb/fulcrum/internal/sockopt"
)

// pingSocket opens an unprivileged ICMP socket (Linux "ping socket"),
// with the packet mark mark when it is not 0 (a *markError when that
// fails).
func pingSocket(v6 bool, mark uint32) (net.PacketConn, error) {
	family, proto := unix.AF_INET, unix.IPPROTO_ICMP
	var local unix.Sockaddr = &unix.SockaddrInet4{}
	if v6 {
		family, proto, local = unix.AF_INET6, unix.IPPROTO_ICMPV6, &unix.SockaddrInet6{}
	}
	fd, err := unix.Socket(family, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, proto)
	if err != nil {
		return nil, err
	}
	if mark != 0 {
		if err := (sockopt.Options{Mark: mark}).Set(fd, v6); err != nil {
			_ = unix.Close(fd)
			return nil, &markError{err: err}
		}
	}
	if err := unix.Bind(fd, local); err != nil {
		_ = unix.Close(fd)
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "icmp")
	defer f.Close()
	c, err := net.FilePacketConn(f)
	if err != nil {
		return nil, fmt.Errorf("ping socket: %w", err)
	}
	return c, nil
}
