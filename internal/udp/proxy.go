// Package udp is the layer-4 UDP proxy.
//
// A session is one client address (address and port) on one VIP socket.
// The first datagram of a new client picks a real server and opens a
// connected UDP socket to it; the client's datagrams are forwarded on that
// socket, and the real server's replies are read by the session's
// goroutine and sent back to the client from the VIP socket the client
// used, so they come from the address and port the client sent to.
//
// Sessions end when no datagram has moved either way for the idle timeout
// (the service's idle timeout, or DefaultIdleTimeout when that is 0: the
// 660 s TCP default would keep a port open per client for 11 minutes),
// when the real server is dropped (drop on failure), when the service's
// drain time ends, and when the session table is full and they are the
// least recently active of a random sample (see table). The table is
// bounded by Options.MaxSessions, each service by its MaxConns, and each
// client address by a rate of new sessions (Options.SourceRate).
//
// The data path takes no lock per datagram: a session is found in a
// sync.Map and counted with atomics. Shaping a datagram flow means
// policing it: a datagram over the service bandwidth or the global
// throughput limit is dropped and counted.
package udp

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/time/rate"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/l4"
)

// DefaultIdleTimeout is the idle timeout of a UDP session whose service
// has Idletime 0.
const DefaultIdleTimeout = 60 * time.Second

// DefaultMaxSessions bounds the session table of a Proxy whose Options do
// not. Each session holds a socket (a file descriptor) and a goroutine.
const DefaultMaxSessions = 16384

// maxDatagram is the largest UDP payload.
const maxDatagram = 65535

// MaxPickRetries is how many further real servers a new session may try
// after a socket to one could not be opened.
const MaxPickRetries = 3

// Options configure a Proxy.
type Options struct {
	// Logger receives the proxy's logs; slog.Default when nil.
	Logger *slog.Logger
	// MaxSessions bounds the number of sessions of all services;
	// DefaultMaxSessions when 0.
	MaxSessions int
	// SourceRate is how many new sessions per second one client address
	// (IPv6: one /64) may open; DefaultSourceRate when 0, no limit when
	// negative. Refusals are counted as the service's LimitConnRate hits.
	SourceRate float64
	// SourceBurst is how many new sessions one client address may open at
	// once; DefaultSourceBurst when 0.
	SourceBurst int
}

// Proxy owns every UDP session of every service and configuration
// generation.
type Proxy struct {
	log     *slog.Logger
	table   *table[key, *session]
	sources *sourceLimiter
	closed  atomic.Bool
	mu      sync.Mutex // orders Close against session starts
	wg      sync.WaitGroup
}

// key identifies a session: a client on a VIP socket.
type key struct {
	sock   *net.UDPConn
	client netip.AddrPort
}

// New returns a Proxy.
func New(o Options) *Proxy {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	return &Proxy{log: o.Logger, table: newTable[key](o.MaxSessions, (*session).lastActive),
		sources: newSourceLimiter(o.SourceRate, o.SourceBurst)}
}

// ServiceConfig describes one UDP virtual service of one configuration
// generation.
type ServiceConfig struct {
	// ID is the virtual service's configuration ID (see CloseService).
	ID int
	// Name identifies the service in logs.
	Name string
	// Picker chooses the real server of each new session. Required.
	Picker balance.Picker
	// IdleTimeout ends a session after this long without a datagram
	// either way; DefaultIdleTimeout when 0.
	IdleTimeout time.Duration
	// Stats receives the service's counters (sessions count as
	// connections); may be nil.
	Stats *backend.Counters
	// Source is the local address of the sockets to the real servers; the
	// zero Addr lets the kernel choose (see l4.ServiceConfig.Source).
	Source netip.Addr
	// MaxConns is the maximum of concurrent sessions; 0 is unlimited.
	MaxConns int
	// ConnRate limits new sessions per second; nil is unlimited.
	ConnRate *rate.Limiter
	// Bandwidth polices the service's datagrams; nil is unlimited.
	Bandwidth *l4.Shaper
	// Throughput polices the datagrams of all services; nil is unlimited.
	Throughput *l4.Shaper
	// HashKey, when set, gives the scheduling key of a new session from its
	// first datagram (balance.Request.HashKey): the hook through which
	// persistence on a SIP Call-ID ("udpsip") plugs in.
	HashKey func(p []byte) string
}

// Service proxies the datagrams of one UDP virtual service. It is a
// listener.PacketHandler.
type Service struct {
	cfg   ServiceConfig
	proxy *Proxy
}

// Service returns a Service of p configured by cfg.
func (p *Proxy) Service(cfg ServiceConfig) *Service {
	if cfg.Stats == nil {
		cfg.Stats = new(backend.Counters)
	}
	if cfg.IdleTimeout <= 0 {
		cfg.IdleTimeout = DefaultIdleTimeout
	}
	if cfg.Source.IsUnspecified() {
		cfg.Source = netip.Addr{}
	}
	return &Service{cfg: cfg, proxy: p}
}

// Config returns the service's configuration.
func (s *Service) Config() ServiceConfig { return s.cfg }

// HandlePacket forwards a datagram from a client, starting a session for
// a new client.
func (s *Service) HandlePacket(sock *net.UDPConn, from netip.AddrPort, p []byte) {
	k := key{sock, from}
	if ss, ok := s.proxy.table.get(k); ok {
		ss.forward(p)
		return
	}
	ss := s.start(k, p)
	if ss != nil {
		ss.forward(p)
	}
}

// start opens a session for k, whose first datagram is first, or returns
// nil when it cannot (limits, no real server, closed proxy).
func (s *Service) start(k key, first []byte) *session {
	p, cfg := s.proxy, &s.cfg
	st := cfg.Stats
	if !p.sources.allow(k.client.Addr(), int64(time.Since(epoch))) {
		st.AddLimitHit(backend.LimitConnRate)
		return nil
	}
	if cfg.ConnRate != nil && !cfg.ConnRate.Allow() {
		st.AddLimitHit(backend.LimitConnRate)
		return nil
	}
	if !st.TryOpen(int64(cfg.MaxConns)) {
		st.AddLimitHit(backend.LimitMaxConns)
		return nil
	}
	req := balance.Request{Client: k.client}
	if cfg.HashKey != nil {
		req.HashKey = cfg.HashKey(first)
	}
	srv, done, conn, err := s.connect(&req)
	if err != nil {
		st.Close()
		st.AddError()
		p.log.Debug("udp: no real server", "service", cfg.Name, "client", k.client, "err", err)
		return nil
	}
	ss := &session{svc: s, key: k, srv: srv, done: done, server: conn}
	ss.touch()
	p.mu.Lock()
	if p.closed.Load() {
		p.mu.Unlock()
		ss.release()
		return nil
	}
	actual, loaded, evicted, evictedOK := p.table.insert(k, ss)
	if loaded { // cannot happen: one read loop per socket; kept for safety
		p.mu.Unlock()
		ss.release()
		return actual
	}
	p.wg.Add(1)
	p.mu.Unlock()
	if evictedOK {
		evicted.svc.cfg.Stats.AddLimitHit(backend.LimitSessions)
		evicted.close()
	}
	ss.untrack = srv.Track(ss)
	go ss.run()
	return ss
}

// connect picks a real server and opens a connected socket to it; after
// a failure it tries another, at most MaxPickRetries times.
func (s *Service) connect(req *balance.Request) (*backend.Server, func(), *net.UDPConn, error) {
	var lastErr error
	for range MaxPickRetries + 1 {
		srv, done, err := s.cfg.Picker.Pick(req)
		if err != nil {
			if lastErr != nil {
				return nil, nil, nil, fmt.Errorf("%w (last: %w)", err, lastErr)
			}
			return nil, nil, nil, err
		}
		c, err := s.dial(srv)
		if err != nil {
			done()
			srv.AddFailure()
			req.Avoid = append(req.Avoid, srv)
			lastErr = err
			continue
		}
		return srv, done, c, nil
	}
	return nil, nil, nil, fmt.Errorf("%d attempts failed, last: %w", MaxPickRetries+1, lastErr)
}

// dial opens a UDP socket connected to srv, bound to the service's Source
// when it has one of srv's family. A real server given by DNS name is
// resolved here, for each new session.
func (s *Service) dial(srv *backend.Server) (*net.UDPConn, error) {
	ap, ok := srv.AddrPort()
	if !ok {
		ua, err := net.ResolveUDPAddr("udp", srv.Addr())
		if err != nil {
			return nil, err
		}
		ap = ua.AddrPort()
	}
	ap = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	var laddr *net.UDPAddr
	if src := s.cfg.Source; src.IsValid() && src.Is4() == ap.Addr().Is4() {
		laddr = net.UDPAddrFromAddrPort(netip.AddrPortFrom(src, 0))
	}
	return net.DialUDP("udp", laddr, net.UDPAddrFromAddrPort(ap))
}

// Active returns the number of sessions.
func (p *Proxy) Active() int { return p.table.len() }

// CloseService ends the sessions of every generation of the service with
// configuration ID id and returns how many it ended.
func (p *Proxy) CloseService(id int) int {
	n := 0
	for _, ss := range p.table.values() {
		if ss.svc.cfg.ID == id {
			ss.close()
			n++
		}
	}
	return n
}

// Close ends every session and waits for their goroutines. Datagrams
// handed to a Service after Close are dropped.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed.Store(true)
	p.mu.Unlock()
	for _, ss := range p.table.values() {
		ss.close()
	}
	p.wg.Wait()
	return nil
}

// epoch is the origin of sessions' activity times.
var epoch = time.Now()

// session is one client's flow to one real server.
type session struct {
	svc     *Service
	key     key
	srv     *backend.Server
	done    func() // releases the picker's reservation
	untrack func()
	server  *net.UDPConn // connected to the real server
	last    atomic.Int64 // time of the last datagram either way, since epoch
}

func (ss *session) touch() { ss.last.Store(int64(time.Since(epoch))) }

func (ss *session) lastActive() int64 { return ss.last.Load() }

// Close ends the session (io.Closer, so that backend.Server.CloseConns
// drops it).
func (ss *session) Close() error {
	ss.close()
	return nil
}

func (ss *session) close() { _ = ss.server.Close() }

// release undoes start for a session that never ran.
func (ss *session) release() {
	_ = ss.server.Close()
	ss.done()
	ss.svc.cfg.Stats.Close()
}

// police reports whether a datagram of n bytes in direction in may pass
// the service's and the global limits; it counts the ones that may not.
func (ss *session) police(n int, in bool) bool {
	cfg := &ss.svc.cfg
	for _, s := range []*l4.Shaper{cfg.Bandwidth, cfg.Throughput} {
		if s == nil {
			continue
		}
		l := s.Limiter(in)
		if !l.AllowN(time.Now(), min(n, l.Burst())) {
			cfg.Stats.AddLimitHit(s.Hit)
			return false
		}
	}
	return true
}

// forward sends a client's datagram to the real server.
func (ss *session) forward(p []byte) {
	if (ss.svc.cfg.Bandwidth != nil || ss.svc.cfg.Throughput != nil) && !ss.police(len(p), true) {
		return
	}
	ss.touch()
	if _, err := ss.server.Write(p); err != nil {
		return // the real server's port is closed (ICMP) or the session ends: the client retransmits
	}
	n := int64(len(p))
	ss.svc.cfg.Stats.AddBytes(n, 0)
	ss.srv.AddBytes(n, 0)
}

// bufPool holds reply buffers: a session takes one only while a datagram
// is waiting, so idle sessions hold none.
var bufPool = sync.Pool{New: func() any { b := make([]byte, maxDatagram); return &b }}

// run reads the real server's replies and sends them to the client until
// the session ends.
func (ss *session) run() {
	p, cfg := ss.svc.proxy, &ss.svc.cfg
	defer func() {
		p.table.remove(ss.key, func(v *session) bool { return v == ss })
		_ = ss.server.Close()
		ss.untrack()
		ss.done()
		cfg.Stats.Close()
		p.wg.Done()
	}()
	rc, err := ss.server.SyscallConn()
	if err != nil {
		return
	}
	idle := cfg.IdleTimeout
	_ = ss.server.SetReadDeadline(time.Now().Add(idle))
	for {
		var bp *[]byte
		var n int
		var rerr error
		err := rc.Read(func(fd uintptr) bool {
			bp = bufPool.Get().(*[]byte)
			for {
				n, rerr = syscall.Read(int(fd), *bp)
				if rerr != syscall.EINTR {
					break
				}
			}
			if rerr == syscall.EAGAIN {
				bufPool.Put(bp)
				bp = nil
				return false
			}
			return true
		})
		if err != nil {
			if !errors.Is(err, os.ErrDeadlineExceeded) {
				return // closed
			}
			since := time.Since(epoch) - time.Duration(ss.lastActive())
			if since >= idle {
				return
			}
			_ = ss.server.SetReadDeadline(time.Now().Add(idle - since))
			continue
		}
		if rerr != nil || n < 0 {
			bufPool.Put(bp)
			continue // ECONNREFUSED from an ICMP port unreachable: keep the session, the server may come back
		}
		if (cfg.Bandwidth == nil && cfg.Throughput == nil) || ss.police(n, false) {
			ss.touch()
			if _, err := ss.key.sock.WriteToUDPAddrPort((*bp)[:n], ss.key.client); err == nil {
				cfg.Stats.AddBytes(0, int64(n))
				ss.srv.AddBytes(0, int64(n))
			}
		}
		bufPool.Put(bp)
	}
}
