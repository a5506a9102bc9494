package udp

import (
	"fmt"
	"net"
	"net/netip"
	"strconv"

	"golang.org/x/sys/unix"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/sockopt"
)

// connect picks a real server and opens a connected socket to it; after
// a failure it tries another, at most MaxPickRetries times. A failure of
// this host (no descriptor, no memory) is not the real server's and ends
// the attempts.
func (s *Service) connect(req *balance.Request) (*backend.Server, func(balance.Outcome), int, error) {
	var lastErr error
	for range MaxPickRetries + 1 {
		srv, done, err := s.cfg.Picker.Pick(req)
		if err != nil {
			if lastErr != nil {
				return nil, nil, -1, fmt.Errorf("%w (last: %w)", err, lastErr)
			}
			return nil, nil, -1, err
		}
		fd, local, err := s.dial(srv, req.Client.Addr())
		if err != nil {
			if local {
				done(balance.Outcome{}) // this host's failure: nothing to say of the server
				return nil, nil, -1, err
			}
			srv.AddFailure()
			done(balance.Outcome{Err: err})
			req.Avoid = append(req.Avoid, srv)
			lastErr = err
			continue
		}
		return srv, done, fd, nil
	}
	return nil, nil, -1, fmt.Errorf("%d attempts failed, last: %w", MaxPickRetries+1, lastErr)
}

// dial opens a non-blocking UDP socket connected to srv, bound to the
// client's address (port 0) when the service is transparent and client
// is of srv's family, else to the service's Source when it has one of
// srv's family. A real server given by DNS name is resolved here, for
// each new session. local reports an error of this host rather than of
// the real server.
func (s *Service) dial(srv *backend.Server, client netip.Addr) (fd int, local bool, err error) {
	ap, ok := srv.AddrPort()
	if !ok {
		ua, err := net.ResolveUDPAddr("udp", srv.Addr())
		if err != nil {
			return -1, false, fmt.Errorf("resolve %s: %w", srv.Addr(), err)
		}
		ap = ua.AddrPort()
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	family := unix.AF_INET6
	if ap.Addr().Is4() {
		family = unix.AF_INET
	}
	if fd, err = socket(family); err != nil {
		return -1, true, fmt.Errorf("socket: %w", err)
	}
	src := s.cfg.Source
	opts := sockopt.Options{Mark: s.cfg.Mark}
	if client = client.Unmap(); s.cfg.Transparent && client.IsValid() && client.Is4() == ap.Addr().Is4() {
		src, opts.Transparent = client, true
	}
	if !opts.Zero() {
		if err := opts.Set(fd, family == unix.AF_INET6); err != nil {
			_ = unix.Close(fd)
			return -1, true, err
		}
	}
	if src.IsValid() && src.Is4() == ap.Addr().Is4() {
		if err := unix.Bind(fd, sockaddr(netip.AddrPortFrom(src, 0), family)); err != nil {
			_ = unix.Close(fd)
			return -1, true, fmt.Errorf("bind %s: %w", src, err)
		}
	}
	if err := unix.Connect(fd, sockaddr(ap, family)); err != nil {
		_ = unix.Close(fd)
		return -1, false, fmt.Errorf("connect %s: %w", ap, err)
	}
	return fd, false, nil
}

// sockaddr returns ap as a socket address of family (AF_INET6 for an IPv4
// address: the IPv4-mapped address).
func sockaddr(ap netip.AddrPort, family int) unix.Sockaddr {
	a := ap.Addr()
	if family == unix.AF_INET {
		return &unix.SockaddrInet4{Port: int(ap.Port()), Addr: a.As4()}
	}
	sa := &unix.SockaddrInet6{Port: int(ap.Port()), Addr: a.As16()}
	if z := a.Zone(); z != "" {
		if ifi, err := net.InterfaceByName(z); err == nil {
			sa.ZoneId = uint32(ifi.Index)
		} else if n, err := strconv.ParseUint(z, 10, 32); err == nil {
			sa.ZoneId = uint32(n)
		}
	}
	return sa
}

// peerSockaddr returns the socket address of client as sock, a VIP
// socket, sends to it.
func peerSockaddr(sock *net.UDPConn, client netip.AddrPort) unix.Sockaddr {
	family := unix.AF_INET
	if la, ok := sock.LocalAddr().(*net.UDPAddr); !client.Addr().Is4() || (ok && la.IP.To4() == nil) {
		family = unix.AF_INET6
	}
	return sockaddr(client, family)
}
