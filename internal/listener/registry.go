// Package listener keeps the data plane's listening sockets across
// reloads.
//
// A Registry holds one socket per key ("tcp/address:port"). Reconcile
// brings it to a desired set: new sockets are opened first, and only when
// all of them are open are removed ones closed, so a failed reload changes
// nothing. A socket kept by a reload keeps its file descriptor and its
// accept loop; the loop reads its Handler through an atomic pointer, so a
// reload changes routing without touching the socket and without a gap in
// accepting. Closing a socket never closes connections already accepted
// from it: they belong to their Handler and drain on their own.
package listener

import (
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"net"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Handler takes connections accepted on a socket.
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

// Key returns the registry key of a socket, e.g. "tcp/127.0.0.1:80" or
// "tcp/[::1]:443".
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

// Registry is the set of open listening sockets. Its methods are safe for
// concurrent use; Reconcile calls are serialised.
type Registry struct {
	log *slog.Logger

	mu     sync.Mutex
	ls     map[string]*socket
	closed bool
}

// socket is one listening socket and its accept loop.
type socket struct {
	key     string
	ln      *net.TCPListener
	handler atomic.Pointer[handlerBox]
	stop    chan struct{} // closed to end the accept loop's back-off sleep
	done    chan struct{} // closed when the accept loop has returned
}

// handlerBox lets an interface value live behind an atomic.Pointer.
type handlerBox struct{ h Handler }

// New returns an empty Registry that logs to log (slog.Default if nil).
func New(log *slog.Logger) *Registry {
	if log == nil {
		log = slog.Default()
	}
	return &Registry{log: log, ls: map[string]*socket{}}
}

// Reconcile makes the open sockets exactly the keys of desired, each
// routing to its Handler:
//
//   - sockets not open yet are opened, in key order; if one cannot be
//     opened, the ones opened by this call are closed and an *OpenError is
//     returned: nothing else has changed;
//   - every desired socket gets its Handler (kept sockets keep their file
//     descriptor and accept loop; only the Handler pointer changes);
//   - sockets not desired are closed: they stop accepting at once, while
//     connections already accepted carry on with their Handler.
func (r *Registry) Reconcile(desired map[string]Handler) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.closed {
		return errors.New("listener registry is closed")
	}
	keys := slices.Sorted(maps.Keys(desired))
	for _, k := range keys {
		if desired[k] == nil {
			return fmt.Errorf("%s: nil handler", k)
		}
	}
	var opened []*socket
	for _, k := range keys {
		if _, ok := r.ls[k]; ok {
			continue
		}
		s, err := open(k)
		if err != nil {
			for _, o := range opened {
				_ = o.ln.Close()
			}
			return err
		}
		opened = append(opened, s)
	}
	for _, k := range keys {
		if s, ok := r.ls[k]; ok {
			s.handler.Store(&handlerBox{desired[k]})
		}
	}
	for _, s := range opened {
		s.handler.Store(&handlerBox{desired[s.key]})
		r.ls[s.key] = s
		go r.accept(s)
		r.log.Info("listening", "socket", s.key)
	}
	var removed []*socket
	for k, s := range r.ls {
		if _, ok := desired[k]; !ok {
			removed = append(removed, s)
			delete(r.ls, k)
		}
	}
	for _, s := range removed {
		s.shut()
		r.log.Info("stopped listening", "socket", s.key)
	}
	return nil
}

// Addr returns the local address of the socket with key k, or nil when it
// is not open.
func (r *Registry) Addr(k string) net.Addr {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.ls[k]; ok {
		return s.ln.Addr()
	}
	return nil
}

// Listener returns the socket with key k, or nil. It is meant for tests and
// diagnostics (e.g. to see that a reload kept a socket); callers must not
// close it or accept on it.
func (r *Registry) Listener(k string) *net.TCPListener {
	r.mu.Lock()
	defer r.mu.Unlock()
	if s, ok := r.ls[k]; ok {
		return s.ln
	}
	return nil
}

// Keys returns the keys of the open sockets, sorted.
func (r *Registry) Keys() []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	return slices.Sorted(maps.Keys(r.ls))
}

// Close closes every socket and waits for the accept loops to return.
// Connections already accepted are not touched. Reconcile fails after
// Close.
func (r *Registry) Close() error {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.closed = true
	for k, s := range r.ls {
		s.shut()
		delete(r.ls, k)
	}
	return nil
}

// open opens the socket of key k.
func open(k string) (*socket, error) {
	network, addr, ok := strings.Cut(k, "/")
	if !ok || network != "tcp" {
		return nil, &OpenError{Key: k, Err: errors.New("only tcp sockets are supported")}
	}
	ap, err := netip.ParseAddrPort(addr)
	if err != nil {
		return nil, &OpenError{Key: k, Err: err}
	}
	ln, err := net.ListenTCP("tcp", net.TCPAddrFromAddrPort(ap))
	if err != nil {
		var op *net.OpError
		if errors.As(err, &op) {
			err = op.Err // "bind: address already in use" without "listen tcp addr:"
		}
		return nil, &OpenError{Key: k, Err: err}
	}
	return &socket{key: k, ln: ln, stop: make(chan struct{}), done: make(chan struct{})}, nil
}

// shut closes the socket and waits for its accept loop to return.
func (s *socket) shut() {
	close(s.stop)
	_ = s.ln.Close()
	<-s.done
}

// accept is the accept loop of s. Errors other than the socket being
// closed (running out of file descriptors, mostly) are retried with a
// back-off from 5 ms to 1 s, as net/http does.
func (r *Registry) accept(s *socket) {
	defer close(s.done)
	var delay time.Duration
	for {
		c, err := s.ln.AcceptTCP()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			delay = min(max(2*delay, 5*time.Millisecond), time.Second)
			r.log.Warn("accept failed; retrying", "socket", s.key, "err", err, "delay", delay)
			t := time.NewTimer(delay)
			select {
			case <-s.stop:
				t.Stop()
				return
			case <-t.C:
			}
			continue
		}
		delay = 0
		s.handler.Load().h.Handle(c)
	}
}
