// Package sockopt sets the socket options of Fulcrum's server-side
// sockets that the host's policy routing relies on: the packet mark of a
// service with its own default gateway (SO_MARK) and transparency
// (IP_TRANSPARENT / IPV6_TRANSPARENT), which lets a socket bind to the
// client's address so that real servers see it. Both need CAP_NET_ADMIN;
// a failure is returned, never ignored: a connection that would leave
// through the wrong gateway or from the wrong address is not made.
package sockopt

import (
	"fmt"
	"syscall"
)

// Options are the options of one server-side socket.
type Options struct {
	// Mark is the SO_MARK of the socket; 0 sets none.
	Mark uint32
	// Transparent sets IP_TRANSPARENT (IPv4) or IPV6_TRANSPARENT (IPv6),
	// so that the socket may bind to an address that is not local.
	Transparent bool
	// NoPort sets IP_BIND_ADDRESS_NO_PORT (best effort: without it the
	// connection still works): a socket bound to an address gets its port
	// at connect time, by the whole 4-tuple. Without it every connection
	// bound to one source address would need a port of its own, and about
	// 28,000 concurrent connections from one VIP (or client address)
	// would exhaust the ephemeral range.
	NoPort bool
}

// Zero reports whether o sets nothing.
func (o Options) Zero() bool { return o == Options{} }

// Control returns a net.Dialer Control function (called after the socket
// is made and before it is bound) that sets o on the socket.
func (o Options) Control() func(network, address string, c syscall.RawConn) error {
	return func(network, _ string, c syscall.RawConn) error {
		var serr error
		if err := c.Control(func(fd uintptr) { serr = o.Set(int(fd), network == "tcp6" || network == "udp6") }); err != nil {
			return fmt.Errorf("socket options: %w", err)
		}
		return serr
	}
}
