package testkit

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
)

// UDPServer is a UDP backend on a 127.x address: one goroutine reads
// datagrams and runs the handler on each. Close, which t.Cleanup calls,
// closes the socket and waits for that goroutine.
type UDPServer struct {
	pc       net.PacketConn
	received atomic.Int64
	wg       sync.WaitGroup
	once     sync.Once
}

// StartUDP serves handle on a free UDP port of ip. handle gets the
// server's socket to answer from, the sender and the datagram (valid only
// during the call).
func StartUDP(t testing.TB, ip string, handle func(pc net.PacketConn, from net.Addr, p []byte)) *UDPServer {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("testkit: listen on udp %s: %v", ip, err)
		return nil
	}
	return ServeUDP(t, pc, handle)
}

// ServeUDP serves handle on pc, which it owns from then on (a socket
// opened elsewhere, e.g. in a network namespace), as StartUDP does.
func ServeUDP(t testing.TB, pc net.PacketConn, handle func(pc net.PacketConn, from net.Addr, p []byte)) *UDPServer {
	t.Helper()
	s := &UDPServer{pc: pc}
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		buf := make([]byte, 64*1024)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			s.received.Add(1)
			handle(pc, from, buf[:n])
		}
	}()
	t.Cleanup(s.Close)
	return s
}

// StartUDPEcho serves on a free UDP port of ip, sending every datagram
// back to its sender.
func StartUDPEcho(t testing.TB, ip string) *UDPServer {
	t.Helper()
	return StartUDP(t, ip, func(pc net.PacketConn, from net.Addr, p []byte) { _, _ = pc.WriteTo(p, from) })
}

// Close closes the socket and waits for the reader. It may be called more
// than once.
func (s *UDPServer) Close() {
	s.once.Do(func() {
		_ = s.pc.Close()
		s.wg.Wait()
	})
}

// Addr returns the address the server listens on, "ip:port".
func (s *UDPServer) Addr() string { return s.pc.LocalAddr().String() }

// IP returns the IP address the server listens on.
func (s *UDPServer) IP() string { return s.pc.LocalAddr().(*net.UDPAddr).IP.String() }

// Port returns the port the server listens on.
func (s *UDPServer) Port() int { return s.pc.LocalAddr().(*net.UDPAddr).Port }

// Received returns the number of datagrams read so far.
func (s *UDPServer) Received() int64 { return s.received.Load() }

// Conn returns the server's socket (to set its buffer sizes, say).
func (s *UDPServer) Conn() net.PacketConn { return s.pc }
