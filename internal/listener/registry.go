// Package listener keeps the data plane's listening sockets across
// reloads.
//
// A Registry holds one socket per key ("tcp/address:port" or
// "udp/address:port"). Reconcile brings it to a desired Set: sockets that
// are new are opened, sockets no longer desired are closed, and every
// socket gets its handler. A socket kept by a reload keeps its file
// descriptor and its accept (TCP) or read (UDP) loop; the loop reads its
// handler through an atomic pointer, so a reload changes routing without
// touching the socket and without a gap. Closing a TCP socket never closes
// connections already accepted from it: they belong to their handler.
//
// A socket that cannot be opened (an address that is not local, a port
// taken by another program) does not stop the others: Reconcile opens
// every socket it can and reports the ones it could not. They stay wanted,
// and Retry tries them again, so a service starts by itself when its
// address appears (an HA takeover, an interface brought up) or its port is
// freed.
//
// IPv4 sockets are opened as tcp4/udp4 and IPv6 ones as tcp6/udp6, so a
// wildcard IPv6 service ("::") is IPv6 only and does not collide with an
// IPv4 one on the same port.
package listener

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// Handler takes connections accepted on a TCP socket.
type Handler interface {
	// Handle takes ownership of c. It is called on the socket's accept
	// goroutine, so it must not block: it should start a goroutine of its
	// own for the connection's work.
	Handle(c net.Conn)
}

// HandlerFunc adapts a function to Handler.
type HandlerFunc func(c net.Conn)

// Handle calls f(c).
func (f HandlerFunc) Handle(c net.Conn) { f(c) }

// PacketHandler takes datagrams received on a UDP socket.
type PacketHandler interface {
	// HandlePacket is given one datagram p received on sock from the
	// client from. It is called on the socket's read goroutine, one
	// datagram at a time, so it must not block for long; p is reused for
	// the next datagram after it returns. Replies to the client are sent
	// with sock.WriteToUDPAddrPort, so they leave from the address the
	// client sent to.
	HandlePacket(sock *net.UDPConn, from netip.AddrPort, p []byte)
}

// PacketHandlerFunc adapts a function to PacketHandler.
type PacketHandlerFunc func(sock *net.UDPConn, from netip.AddrPort, p []byte)

// HandlePacket calls f(sock, from, p).
func (f PacketHandlerFunc) HandlePacket(sock *net.UDPConn, from netip.AddrPort, p []byte) {
	f(sock, from, p)
}

// Set is a desired set of sockets with their handlers.
type Set struct {
	// TCP are the TCP sockets to listen on.
	TCP map[netip.AddrPort]Handler
	// UDP are the UDP sockets to read from.
	UDP map[netip.AddrPort]PacketHandler
}

// Key returns the registry key of a socket, e.g. "tcp/127.0.0.1:80" or
// "udp/[::1]:5060".
func Key(network string, ap netip.AddrPort) string {
	return network + "/" + ap.String()
}

// OpenError reports a socket that could not be opened.
type OpenError struct {
	// Key is the socket's key.
	Key string
	// Err is the cause, e.g. "bind: address already in use".
	Err error
}

// Error implements error.
func (e *OpenError) Error() string { return e.Key + ": " + e.Err.Error() }

// Unwrap returns the cause.
func (e *OpenError) Unwrap() error { return e.Err }

// KeepAlive is the TCP keep-alive configuration of accepted connections:
// the first probe after 60 s without traffic, then every 15 s, and the
// connection is dead after 4 unanswered probes (2 minutes). It keeps
// long-lived idle sessions (SIP over TCP, the Lync case) alive through
// stateful firewalls and finds dead clients long before an 1800 s or
// 86400 s idle timeout would.
var KeepAlive = net.KeepAliveConfig{Enable: true, Idle: 60 * time.Second, Interval: 15 * time.Second, Count: 4}

// udpReadBuffer is the receive buffer asked for UDP sockets (the kernel
// caps it at net.core.rmem_max).
const udpReadBuffer = 4 << 20

// Registry is the set of open listening sockets. Its methods are safe for
// concurrent use; Reconcile, Retry and Close are serialised.
type Registry struct {
	log *slog.Logger

	mu      sync.Mutex
	ls      map[string]*socket
	pending map[string]*socket // wanted but not open: handler and last error
	closed  bool
}

// socket is one listening socket and its accept or read loop.
type socket struct {
	key     string
	network string // "tcp" or "udp"
	ap      netip.AddrPort
	ln      *net.TCPListener // tcp
	pc      *net.UDPConn     // udp
	handler atomic.Pointer[handlerBox]
	packet  atomic.Pointer[packetBox]
	err     error         // the last open error while pending
	stop    chan struct{} // closed to end the loop's back-off sleep
	done    chan struct{} // closed when the loop has returned
}

// handlerBox and packetBox let interface values live behind an
// atomic.Pointer.
type handlerBox struct{ h Handler }
type packetBox struct{ h PacketHandler }

// New returns an empty Registry that logs to log (slog.Default if nil).
func New(log *slog.Logger) *Registry {
	if log == nil {
		log = slog.Default()
	}
	return &Registry{log: log, ls: map[string]*socket{}, pending: map[string]*socket{}}
}

// Reconcile makes the wanted sockets exactly those of want, each routing
// to its handler:
//
//   - sockets not open yet are opened, in key order; one that cannot be
//     opened is reported in failed (key → *OpenError), stays wanted and is
//     tried again by Retry; the others are opened regardless;
//   - every open socket of want gets its handler (kept sockets keep their
//     file descriptor and loop; only the handler pointer changes);
//   - sockets not in want are closed: they stop accepting at once, while
//     connections already accepted carry on with their handler.
//
// err is non-nil, and nothing has changed, only when the Registry is
// closed or a handler is nil.
func (r *Registry) Reconcile(want Set) (failed map[string]error, err error) {
	desired := map[string]*socket{}
	for ap, h := range want.TCP {
		if h == nil {
			return nil, fmt.Errorf("%s: nil handler", Key("tcp", ap))
		}
		s := newSocket("tcp", ap)
		s.handler.Store(&handlerBox{h})
		desired[s.key] = s
	}
	for ap, h := range want.UDP {
		if h == nil {
			return nil, fmt.Errorf("%s: nil handler", Key("udp", ap))
		}
		s := newSocket("udp", ap)
		s.packet.Store(&packetBox{h})
		desired[s.key] = s
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil, errors.New("listener registry is closed")
	}
	failed = map[string]error{}
	r.pending = map[string]*socket{}
	for _, k := range slices.Sorted(maps.Keys(desired)) {
		want := desired[k]
		if s, ok := r.ls[k]; ok { // kept: new handler only
			if want.network == "tcp" {
				s.handler.Store(want.handler.Load())
			} else {
				s.packet.Store(want.packet.Load())
			}
			continue
		}
		if err := want.open(); err != nil {
			want.err = err
			r.pending[k] = want
			failed[k] = err
			r.log.Warn("cannot listen; will retry", "socket", k, "err", err)
			continue
		}
		r.start(want)
	}
	for k, s := range r.ls {
		if _, ok := desired[k]; !ok {
			delete(r.ls, k)
			s.shut()
			r.log.Info("stopped listening", "socket", k)
		}
	}
	return failed, nil
}

// Retry tries again to open the wanted sockets that could not be opened
// and returns the keys of those it opened.
func (r *Registry) Retry() (opened []string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return nil
	}
	for _, k := range slices.Sorted(maps.Keys(r.pending)) {
		s := r.pending[k]
		if err := s.open(); err != nil {
			s.err = err
			continue
		}
		delete(r.pending, k)
		r.start(s)
		opened = append(opened, k)
	}
	return opened
}

// start registers an opened socket and starts its loop; r.mu is held.
func (r *Registry) start(s *socket) {
	r.ls[s.key] = s
	if s.network == "tcp" {
		go r.accept(s)
	} else {
		go r.read(s)
	}
	r.log.Info("listening", "socket", s.key)
}

// Err returns why the wanted socket with key k is not open, or nil when it
// is open or not wanted.
func (r *Registry) Err(k string) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.pending[k]; ok {
		return s.err
	}
	return nil
}

// Pending returns the keys of the wanted sockets that are not open, sorted.
func (r *Registry) Pending() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.pending))
}

// Addr returns the local address of the socket with key k, or nil when it
// is not open.
func (r *Registry) Addr(k string) net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.ls[k]; ok {
		if s.ln != nil {
			return s.ln.Addr()
		}
		return s.pc.LocalAddr()
	}
	return nil
}

// Listener returns the TCP socket with key k, or nil. It is meant for
// tests and diagnostics (e.g. to see that a reload kept a socket); callers
// must not close it or accept on it.
func (r *Registry) Listener(k string) *net.TCPListener {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.ls[k]; ok {
		return s.ln
	}
	return nil
}

// PacketConn returns the UDP socket with key k, or nil; like Listener it is
// meant for tests and diagnostics.
func (r *Registry) PacketConn(k string) *net.UDPConn {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.ls[k]; ok {
		return s.pc
	}
	return nil
}

// Keys returns the keys of the open sockets, sorted.
func (r *Registry) Keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.ls))
}

// Close closes every socket and waits for the loops to return. Connections
// already accepted are not touched. Reconcile fails after Close.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for k, s := range r.ls {
		s.shut()
		delete(r.ls, k)
	}
	r.pending = map[string]*socket{}
	return nil
}

func newSocket(network string, ap netip.AddrPort) *socket {
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	return &socket{key: Key(network, ap), network: network, ap: ap}
}

// open opens the socket. It may be called again after a failure.
func (s *socket) open() error {
	family := "4"
	if s.ap.Addr().Is6() {
		family = "6"
	}
	lc := net.ListenConfig{KeepAliveConfig: KeepAlive}
	addr := s.ap.String()
	var err error
	if s.network == "tcp" {
		if inheritsKeepAlive {
			lc = net.ListenConfig{KeepAlive: -1, Control: keepAliveOnListener}
		}
		var ln net.Listener
		if ln, err = lc.Listen(context.Background(), "tcp"+family, addr); err == nil {
			s.ln = ln.(*net.TCPListener)
		}
	} else {
		var pc net.PacketConn
		if pc, err = lc.ListenPacket(context.Background(), "udp"+family, addr); err == nil {
			s.pc = pc.(*net.UDPConn)
			_ = s.pc.SetReadBuffer(udpReadBuffer) // best effort
		}
	}
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err // "bind: address already in use" without "listen tcp addr:"
		}
		return &OpenError{Key: s.key, Err: err}
	}
	s.err = nil
	s.stop, s.done = make(chan struct{}), make(chan struct{})
	return nil
}

// shut closes the socket and waits for its loop to return.
func (s *socket) shut() {
	close(s.stop)
	if s.ln != nil {
		_ = s.ln.Close()
	} else {
		_ = s.pc.Close()
	}
	<-s.done
}

// backoff sleeps after a failed accept or read: from 5 ms doubling to 1 s,
// as net/http does. It reports false when the socket is being shut.
func backoff(s *socket, delay *time.Duration) bool {
	*delay = min(max(2**delay, 5*time.Millisecond), time.Second)
	t := time.NewTimer(*delay)
	defer t.Stop()
	select {
	case <-s.stop:
		return false
	case <-t.C:
		return true
	}
}

// accept is the accept loop of a TCP socket. Errors other than the socket
// being closed (running out of file descriptors, mostly) are retried with
// a back-off.
func (r *Registry) accept(s *socket) {
	defer close(s.done)
	var delay time.Duration
	for {
		c, err := s.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.log.Warn("accept failed; retrying", "socket", s.key, "err", err)
			if !backoff(s, &delay) {
				return
			}
			continue
		}
		delay = 0
		s.handler.Load().h.Handle(c)
	}
}

// maxDatagram is the largest UDP payload.
const maxDatagram = 65535

// read is the read loop of a UDP socket.
func (r *Registry) read(s *socket) {
	defer close(s.done)
	buf := make([]byte, maxDatagram)
	var delay time.Duration
	for {
		n, from, err := s.pc.ReadFromUDPAddrPort(buf)
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			r.log.Warn("read failed; retrying", "socket", s.key, "err", err)
			if !backoff(s, &delay) {
				return
			}
			continue
		}
		delay = 0
		from = netip.AddrPortFrom(from.Addr().Unmap(), from.Port())
		s.packet.Load().h.HandlePacket(s.pc, from, buf[:n])
	}
}
