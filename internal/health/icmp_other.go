//go:build !linux

package health

import (
	"errors"
	"net"
)

// pingSocket is Linux only; elsewhere icmp checks need a raw socket.
func pingSocket(bool, uint32) (net.PacketConn, error) {
	return nil, errors.New("ping sockets are Linux only")
}
