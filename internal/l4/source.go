package l4

import (
	"fmt"
	"net"
	"net/netip"
)

// RouteSource returns the local address the kernel uses to reach dst: the
// address of the interface its route goes out of, which is what server
// connections leave from with subnet originating requests (Source unset).
// It asks the kernel by connecting a UDP socket, which sends nothing.
func RouteSource(dst netip.Addr) (netip.Addr, error) {
	c, err := net.DialUDP("udp", nil, net.UDPAddrFromAddrPort(netip.AddrPortFrom(dst, 9)))
	if err != nil {
		return netip.Addr{}, fmt.Errorf("route to %s: %w", dst, err)
	}
	defer c.Close()
	return c.LocalAddr().(*net.UDPAddr).AddrPort().Addr().Unmap(), nil
}
