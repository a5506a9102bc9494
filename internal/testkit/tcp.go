package testkit

import (
	"crypto/tls"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// connDeadline bounds every connection of the TCP and TLS backends, so
// that a client that never closes cannot keep a test waiting.
const connDeadline = 30 * time.Second

// TCPServer is a TCP (or TLS) backend on a 127.x address: it accepts
// connections and runs its handler on each in a goroutine of its own.
// Close, which t.Cleanup calls, closes the listener and every open
// connection and waits for the handlers to return.
type TCPServer struct {
	ln       net.Listener
	handle   func(net.Conn)
	wrap     func(net.Conn) net.Conn
	accepted atomic.Int64
	wg       sync.WaitGroup
	mu       sync.Mutex
	conns    map[net.Conn]struct{}
	once     sync.Once
}

// StartTCP serves handle on a free port of ip. The connection is closed
// when handle returns; a nil handle closes each connection at once (a
// backend that only accepts).
func StartTCP(t testing.TB, ip string, handle func(net.Conn)) *TCPServer {
	t.Helper()
	return ServeTCP(t, Listen(t, ip), handle)
}

// ServeTCP serves handle on ln, which it owns from then on (use it with
// ListenAt to serve on a given port).
func ServeTCP(t testing.TB, ln net.Listener, handle func(net.Conn)) *TCPServer {
	t.Helper()
	return serveTCP(t, ln, handle, nil)
}

// StartTCPEcho serves on a free port of ip, sending back every byte it
// reads until the client closes.
func StartTCPEcho(t testing.TB, ip string) *TCPServer {
	t.Helper()
	return StartTCP(t, ip, func(c net.Conn) { _, _ = io.Copy(c, c) })
}

// StartTCPFixed serves on a free port of ip, answering the first read of
// each connection (up to 4 KiB, whatever it holds) with reply and then
// closing it.
func StartTCPFixed(t testing.TB, ip string, reply []byte) *TCPServer {
	t.Helper()
	return StartTCP(t, ip, func(c net.Conn) {
		buf := make([]byte, 4096)
		if _, err := c.Read(buf); err != nil {
			return
		}
		_, _ = c.Write(reply)
	})
}

// StartTLS serves handle over TLS with cfg on a free port of ip: handle
// gets the *tls.Conn, whose handshake runs on its first read or write.
func StartTLS(t testing.TB, ip string, cfg *tls.Config, handle func(net.Conn)) *TCPServer {
	t.Helper()
	return serveTCP(t, Listen(t, ip), handle, func(c net.Conn) net.Conn { return tls.Server(c, cfg) })
}

// StartTLSEcho is StartTCPEcho over TLS with cfg.
func StartTLSEcho(t testing.TB, ip string, cfg *tls.Config) *TCPServer {
	t.Helper()
	return StartTLS(t, ip, cfg, func(c net.Conn) { _, _ = io.Copy(c, c) })
}

func serveTCP(t testing.TB, ln net.Listener, handle func(net.Conn), wrap func(net.Conn) net.Conn) *TCPServer {
	s := &TCPServer{ln: ln, handle: handle, wrap: wrap, conns: map[net.Conn]struct{}{}}
	s.wg.Add(1)
	go s.accept()
	t.Cleanup(s.Close)
	return s
}

func (s *TCPServer) accept() {
	defer s.wg.Done()
	for {
		c, err := s.ln.Accept()
		if err != nil {
			return
		}
		s.accepted.Add(1)
		s.mu.Lock()
		if s.conns == nil { // closed meanwhile
			s.mu.Unlock()
			_ = c.Close()
			return
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		go s.serve(c)
	}
}

func (s *TCPServer) serve(raw net.Conn) {
	defer s.wg.Done()
	defer func() {
		s.mu.Lock()
		delete(s.conns, raw)
		s.mu.Unlock()
		_ = raw.Close()
	}()
	_ = raw.SetDeadline(time.Now().Add(connDeadline))
	c := raw
	if s.wrap != nil {
		c = s.wrap(raw)
	}
	if s.handle != nil {
		s.handle(c)
	}
	_ = c.Close()
}

// Close stops accepting, closes every open connection and waits for the
// handlers to return. It may be called more than once.
func (s *TCPServer) Close() {
	s.once.Do(func() {
		_ = s.ln.Close()
		s.mu.Lock()
		for c := range s.conns {
			_ = c.Close()
		}
		s.conns = nil
		s.mu.Unlock()
		s.wg.Wait()
	})
}

// Listener returns the server's listener.
func (s *TCPServer) Listener() net.Listener { return s.ln }

// Addr returns the address the server listens on, "ip:port".
func (s *TCPServer) Addr() string { return s.ln.Addr().String() }

// IP returns the IP address the server listens on.
func (s *TCPServer) IP() string { return s.ln.Addr().(*net.TCPAddr).IP.String() }

// Port returns the port the server listens on.
func (s *TCPServer) Port() int { return s.ln.Addr().(*net.TCPAddr).Port }

// Accepted returns the number of connections accepted so far.
func (s *TCPServer) Accepted() int64 { return s.accepted.Load() }
