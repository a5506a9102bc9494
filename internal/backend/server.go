// Package backend holds the runtime state of real servers: connection and
// byte counters, dial failures, the set of open connections and the
// settings in force. This state lives outside the configuration and
// survives reloads: a reload that keeps a real server keeps its *Server, so
// its counters continue.
package backend

import (
	"io"
	"net"
	"net/netip"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// Key is the stable identity of a real server across reloads: the virtual
// service it belongs to and its address and port. Changing any of them makes
// a different real server with fresh counters.
type Key struct {
	// VS is the ID of the virtual service.
	VS int
	// Address is the real server's address as configured (IP or DNS name).
	Address string
	// Port is the real server's port.
	Port int
}

// String returns "vs/address:port", for logs.
func (k Key) String() string {
	return strconv.Itoa(k.VS) + "/" + net.JoinHostPort(k.Address, strconv.Itoa(k.Port))
}

// Settings are the configured values of a real server that the data plane
// uses. They are replaced as a whole on reload.
type Settings struct {
	// ID is the real server's configuration ID.
	ID int
	// Weight is the relative share for the weighted methods.
	Weight int
	// Limit is the maximum number of concurrent connections; 0 is unlimited.
	Limit int
	// Enabled is false for a real server taken out of service.
	Enabled bool
}

// Counters are connection and byte counters of a service or real server.
// All methods are safe for concurrent use; the zero value is ready.
//
// BytesIn counts bytes received from clients (and sent on to real
// servers); BytesOut counts bytes sent to clients (received from real
// servers).
type Counters struct {
	active   atomic.Int64
	total    atomic.Int64
	bytesIn  atomic.Int64
	bytesOut atomic.Int64
	errors   atomic.Int64
	limits   [numLimits]atomic.Int64
	peak     atomic.Int64 // most connections active at once
	meter    meter
}

// Open counts a new connection: active and total both go up by one.
func (c *Counters) Open() {
	storeMax(&c.peak, c.active.Add(1))
	c.total.Add(1)
}

// TryOpen counts a new connection like Open unless max is positive and
// max connections are already active; it reports whether it counted. It
// never blocks.
func (c *Counters) TryOpen(max int64) bool {
	if max <= 0 {
		c.Open()
		return true
	}
	for {
		n := c.active.Load()
		if n >= max {
			return false
		}
		if c.active.CompareAndSwap(n, n+1) {
			storeMax(&c.peak, n+1)
			c.total.Add(1)
			return true
		}
	}
}

// AddError counts a connection that could not be proxied: no real server
// was available or every dial failed.
func (c *Counters) AddError() { c.errors.Add(1) }

// Errors returns the number of connections that could not be proxied.
func (c *Counters) Errors() int64 { return c.errors.Load() }

// AddLimitHit counts one time limit l was reached: a connection or
// datagram refused, or a copy held back by shaping.
func (c *Counters) AddLimitHit(l Limit) {
	if l >= 0 && l < numLimits {
		c.limits[l].Add(1)
	}
}

// LimitHits returns how many times limit l was reached.
func (c *Counters) LimitHits(l Limit) int64 {
	if l < 0 || l >= numLimits {
		return 0
	}
	return c.limits[l].Load()
}

// Sample updates the rates from the counters' growth since the previous
// Sample; see Rates. It is meant to be called about once a second by one
// goroutine.
func (c *Counters) Sample(now time.Time) {
	c.meter.sample(now, c.total.Load(), c.bytesIn.Load(), c.bytesOut.Load())
}

// Rates returns the rates measured by the last two calls of Sample.
func (c *Counters) Rates() Rates { return c.meter.rates() }

// Close counts the end of a connection counted by Open.
func (c *Counters) Close() { c.active.Add(-1) }

// AddBytes adds to the byte counters.
func (c *Counters) AddBytes(in, out int64) {
	if in != 0 {
		c.bytesIn.Add(in)
	}
	if out != 0 {
		c.bytesOut.Add(out)
	}
}

// Active returns the number of open connections.
func (c *Counters) Active() int64 { return c.active.Load() }

// Total returns the number of connections ever counted.
func (c *Counters) Total() int64 { return c.total.Load() }

// BytesIn returns the bytes received from clients.
func (c *Counters) BytesIn() int64 { return c.bytesIn.Load() }

// BytesOut returns the bytes sent to clients.
func (c *Counters) BytesOut() int64 { return c.bytesOut.Load() }

// Server is the runtime state of one real server. It is created by a
// Registry (or by NewServer in tests) and shared by every generation of the
// configuration that keeps the real server.
//
// Active counts reservations made by a picker (Acquire) and released when
// the connection ends (Release); it includes connections still being
// dialled, which is what least-connection methods must see. Total and the
// byte counters count established connections only (Track and AddBytes).
type Server struct {
	key      Key
	addr     string
	ap       netip.AddrPort // valid when the address is an IP literal
	reg      *Registry      // set by Registry.Lookup and Commit, which hold its lock
	removed  atomic.Bool
	settings atomic.Pointer[Settings]

	active   atomic.Int64
	total    atomic.Int64
	bytesIn  atomic.Int64
	bytesOut atomic.Int64
	failures atomic.Int64

	requests  atomic.Int64             // HTTP requests (attempts) sent
	responses [NumClasses]atomic.Int64 // HTTP answers relayed, by class

	health   atomic.Int32 // a Health
	draining atomic.Bool
	meter    meter
	peak     atomic.Int64 // most slots reserved at once
	extra    Extra        // what HAProxy's exporter reports besides

	release func() // s.Release, allocated once so pickers return it without allocating

	mu    sync.Mutex
	conns map[io.Closer]struct{}
}

// NewServer returns a Server that belongs to no Registry, with the given
// settings. Registries create theirs with Registry.Lookup.
func NewServer(k Key, s Settings) *Server {
	srv := &Server{key: k, addr: net.JoinHostPort(k.Address, strconv.Itoa(k.Port))}
	if ip, err := netip.ParseAddr(k.Address); err == nil && ip.Zone() == "" && k.Port > 0 && k.Port < 65536 {
		srv.ap = netip.AddrPortFrom(ip.Unmap(), uint16(k.Port))
	}
	srv.release = srv.Release
	srv.settings.Store(&s)
	return srv
}

// Key returns the server's identity.
func (s *Server) Key() Key { return s.key }

// Addr returns the address to dial, "address:port".
func (s *Server) Addr() string { return s.addr }

// AddrPort returns the address and port as a netip.AddrPort, and false
// when the address is a DNS name rather than an IP address.
func (s *Server) AddrPort() (netip.AddrPort, bool) { return s.ap, s.ap.IsValid() }

// Settings returns the settings in force.
func (s *Server) Settings() Settings { return *s.settings.Load() }

// Weight returns the configured weight.
func (s *Server) Weight() int { return s.settings.Load().Weight }

// Limit returns the configured connection limit; 0 is unlimited.
func (s *Server) Limit() int { return s.settings.Load().Limit }

// Configure replaces the settings. Pickers read them when they are built,
// so a change takes effect with the next generation of pickers.
func (s *Server) Configure(set Settings) { s.settings.Store(&set) }

// Acquire reserves a connection slot: it increments Active unless limit is
// positive and Active has already reached it, and reports whether it did.
// It never blocks.
func (s *Server) Acquire(limit int64) bool {
	if limit <= 0 {
		storeMax(&s.peak, s.active.Add(1))
		return true
	}
	for {
		n := s.active.Load()
		if n >= limit {
			return false
		}
		if s.active.CompareAndSwap(n, n+1) {
			storeMax(&s.peak, n+1)
			return true
		}
	}
}

// Release returns a slot reserved by Acquire. When a server that was
// removed from its Registry releases its last slot, the Registry forgets it.
func (s *Server) Release() {
	if s.active.Add(-1) == 0 && s.removed.Load() {
		s.reg.idle(s)
	}
}

// ReleaseFunc returns Release as a func value without allocating.
func (s *Server) ReleaseFunc() func() { return s.release }

// Track counts an established connection (Total) and records c among the
// server's open connections until the returned func is called.
func (s *Server) Track(c io.Closer) (untrack func()) {
	s.total.Add(1)
	s.mu.Lock()
	if s.conns == nil {
		s.conns = make(map[io.Closer]struct{})
	}
	s.conns[c] = struct{}{}
	s.mu.Unlock()
	return func() {
		s.mu.Lock()
		delete(s.conns, c)
		s.mu.Unlock()
	}
}

// OpenConns returns the number of connections recorded by Track.
func (s *Server) OpenConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// CloseConns closes every connection recorded by Track and returns how many
// it closed. It is meant for dropping connections on real-server failure.
func (s *Server) CloseConns() int {
	s.mu.Lock()
	list := make([]io.Closer, 0, len(s.conns))
	for c := range s.conns {
		list = append(list, c)
	}
	s.mu.Unlock()
	for _, c := range list {
		_ = c.Close()
	}
	return len(list)
}

// AddBytes adds to the byte counters (in: from clients, out: to clients).
func (s *Server) AddBytes(in, out int64) {
	if in != 0 {
		s.bytesIn.Add(in)
	}
	if out != 0 {
		s.bytesOut.Add(out)
	}
}

// AddFailure counts a failed dial.
func (s *Server) AddFailure() { s.failures.Add(1) }

// Active returns the reserved connection slots (established or dialling).
func (s *Server) Active() int64 { return s.active.Load() }

// Total returns the number of connections established to the server.
func (s *Server) Total() int64 { return s.total.Load() }

// BytesIn returns the bytes sent to the server on behalf of clients.
func (s *Server) BytesIn() int64 { return s.bytesIn.Load() }

// BytesOut returns the bytes received from the server for clients.
func (s *Server) BytesOut() int64 { return s.bytesOut.Load() }

// Failures returns the number of failed dials.
func (s *Server) Failures() int64 { return s.failures.Load() }

// Sample updates the rates from the counters' growth since the previous
// Sample; see Rates. It is meant to be called about once a second by one
// goroutine.
func (s *Server) Sample(now time.Time) {
	s.meter.sample(now, s.total.Load(), s.bytesIn.Load(), s.bytesOut.Load())
}

// Rates returns the rates measured by the last two calls of Sample.
func (s *Server) Rates() Rates { return s.meter.rates() }
