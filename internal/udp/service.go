package udp

import (
	"errors"
	"net"
	"net/netip"
	"time"

	"golang.org/x/time/rate"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/l4"
)

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
	// Transparent makes the sockets to the real servers leave from the
	// client's own address (see l4.ServiceConfig.Transparent).
	Transparent bool
	// Mark is the SO_MARK of the sockets to the real servers; 0 none.
	Mark uint32
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
	// AccessLog receives one entry at the end of each session (the
	// service's accessLog), and one for a client no session could be
	// started for (no real server); nil logs nothing.
	AccessLog accesslog.Logger
	// VSName names the service in access log entries: its nickname, or
	// its address:port.
	VSName string
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

// HandlePacket forwards a datagram from a client. A datagram of a new
// client is queued for a starter goroutine, which makes its session and
// then forwards it; when the queue is full, it is dropped and counted as a
// LimitConnRate hit, so that a flood of new clients never holds up the
// datagrams of established sessions.
func (s *Service) HandlePacket(sock *net.UDPConn, from netip.AddrPort, p []byte) {
	k := key{sock, from}
	if ss, ok := s.proxy.table.get(k); ok {
		ss.forward(p)
		return
	}
	s.proxy.enqueue(s, k, p)
}

// start opens a session for k, whose first datagram is first, or returns
// nil when it cannot (limits, no real server, closed proxy).
func (s *Service) start(k key, first []byte) *session {
	p, cfg := s.proxy, &s.cfg
	st := cfg.Stats
	if p.closed.Load() {
		return nil
	}
	if cfg.ConnRate != nil && !cfg.ConnRate.Allow() {
		st.AddLimitHit(backend.LimitConnRate)
		return nil
	}
	if !st.TryOpen(int64(cfg.MaxConns)) && !s.makeRoom() {
		st.AddLimitHit(backend.LimitMaxConns)
		return nil
	}
	slot, err := p.acquire()
	if err != nil {
		st.Close()
		switch {
		case errors.Is(err, errClosed):
		case errors.Is(err, errFull):
			st.AddLimitHit(backend.LimitSessions)
		default:
			st.AddError()
			p.warn("udp: no session", "service", cfg.Name, "err", err)
		}
		return nil
	}
	defer p.starting.Done()
	req := balance.Request{Client: k.client}
	if cfg.HashKey != nil {
		req.HashKey = cfg.HashKey(first)
	}
	born := time.Now()
	srv, done, fd, err := s.connect(&req)
	if err != nil {
		p.releaseSlot(slot)
		st.Close()
		st.AddError()
		p.log.Debug("udp: no real server", "service", cfg.Name, "client", k.client, "err", err)
		if cfg.AccessLog != nil {
			term := termNoServer
			if len(req.Avoid) > 0 {
				term = termConnect
			}
			s.logEntry(k, born, nil, max(len(req.Avoid)-1, 0), int64(len(first)), 0, term)
		}
		return nil
	}
	ss := &session{svc: s, key: k, srv: srv, done: done, fd: fd, slot: slot, set: p.setOf(slot),
		peer: peerSockaddr(k.sock, k.client), born: born, retries: len(req.Avoid)}
	ss.touch()
	if ss.vip, err = k.sock.SyscallConn(); err == nil {
		p.slots.store(slot, ss)
		err = ss.set.add(p, ss)
	}
	if err != nil {
		ss.end(termClosed)
		st.AddError()
		p.warn("udp: no session", "service", cfg.Name, "err", err)
		return nil
	}
	// From here, the session can be closed by others: Track hands it to
	// backend.Server.CloseConns, the insert to the sweep and to evictions.
	ss.mu.Lock()
	ss.untrack = srv.Track(ss)
	ss.mu.Unlock()
	actual, loaded, evicted, evictedOK := p.table.insert(k, ss)
	if loaded { // cannot happen: a client's datagrams go to one starter, which looks the session up first
		ss.close()
		return actual
	}
	if ss.closing.Load() { // closed during the insert, which may then have listed it
		p.table.remove(k, func(v *session) bool { return v == ss })
		return nil
	}
	if evictedOK { // cannot happen either: a slot was taken
		evicted.svc.cfg.Stats.AddLimitHit(backend.LimitSessions)
		evicted.end(termEvicted)
	}
	return ss
}

// makeRoom lets a new client in at the service's maximum of sessions: it
// ends one of the service's sessions that never proved a round trip (a
// spoofed source's, or a client that sent one datagram and went), the
// least recently active of a sample, and takes its place. Without it a
// spoofed flood that filled the service's share of the table locked the
// service's real clients out for the idle timeout. It reports whether
// the new session was counted.
func (s *Service) makeRoom() bool {
	id := s.cfg.ID
	victim, ok := s.proxy.table.evictMatch(func(o *session) bool { return o.svc.cfg.ID == id && !o.proof.Load() })
	if !ok {
		return false
	}
	victim.svc.cfg.Stats.AddLimitHit(backend.LimitSessions)
	victim.end(termEvicted)
	return s.cfg.Stats.TryOpen(int64(s.cfg.MaxConns))
}

// Causes of a session's end, in session.term, and their names in access
// log entries (accesslog.Entry.Termination).
const (
	termNone     uint32 = iota // not ended yet, or by a failure to set it up
	termIdle                   // the idle timeout: a session's normal end
	termEvicted                // ended to make room for a new client (session table or the service's maxConns full)
	termClosed                 // Fulcrum closed it: service removed, real server removed or dropped, or shutdown
	termNoServer               // no real server to pick (no session was started)
	termConnect                // every real server tried failed (no session was started)
)

var termNames = [...]string{"", "idle-timeout", "evicted", "closed", "no-server", "connect-failed"}

// logEntry writes the access log entry of a session of client k that
// started at born and ended for term; srv is nil when no real server took
// it.
func (s *Service) logEntry(k key, born time.Time, srv *backend.Server, retries int, in, out int64, term uint32) {
	cfg := &s.cfg
	c := accesslog.Conn{Kind: accesslog.KindUDP, Born: born, VS: cfg.ID, VSName: cfg.VSName, Client: k.client,
		Local: k.sock.LocalAddr(), BytesIn: in, BytesOut: out, Retries: retries, Termination: termNames[term]}
	if srv != nil {
		c.Server, c.ServerID = srv.Addr(), srv.Settings().ID
	}
	accesslog.LogConn(cfg.AccessLog, &c)
}
