// Package udp is the layer-4 UDP proxy.
//
// A session is one client address (address and port) on one VIP socket.
// The first datagram of a new client picks a real server and opens a UDP
// socket connected to it; the client's datagrams are forwarded on that
// socket, and the real server's replies are sent back to the client from
// the VIP socket the client used, so they come from the address and port
// the client sent to.
//
// Each session has a socket of its own, since the proxy is not transparent:
// the replies of a real server to different clients are told apart only
// by the local port they arrive on. So a session costs one file descriptor,
// and the session table's bound (Options.MaxSessions) is a bound on the
// descriptors: every socket belongs to a slot of the table taken before
// the socket is opened, sessions being started included, and the package
// holds at most MaxSessions sockets plus one descriptor per poll set.
// Sessions cost no goroutine: their sockets are raw non-blocking
// descriptors in a few epoll sets, each served by one goroutine that reads
// the replies of every ready socket in a batch per wake-up (outside Linux,
// each session has a goroutine; see pollSet).
//
// Making a session takes several system calls, so it is not done on the
// VIP socket's read loop: the first datagram of a new client is queued
// for a starter goroutine, which makes the session and forwards it. When
// new clients come faster than sessions can be made (a flood of spoofed
// sources), the queue is full and their datagrams are dropped, while the
// read loop keeps up with the datagrams of established sessions. A
// client's datagrams sent while its session is being made may be overtaken
// by the ones it sends after.
//
// Sessions end when no datagram has moved either way for the idle timeout
// (the service's idle timeout, or DefaultIdleTimeout when that is 0: the
// 660 s TCP default would keep a port open per client for 11 minutes;
// a sweep every second ends them, so up to a second late), when the real
// server is dropped (drop on failure), when the service's drain time ends,
// and when the session table is full and they rank lowest in a random
// sample (see table): sessions that have not proved a round trip (a client
// datagram after a reply) first, as a spoofed source cannot, then the
// least recently active. Each service is also bounded by its MaxConns, and
// each client address by a rate of new sessions (Options.SourceRate).
//
// The data path takes no lock but the session's own per datagram: a
// session is found in a sync.Map and counted with atomics. Shaping a
// datagram flow means policing it: a datagram over the service bandwidth
// or the global throughput limit is dropped and counted.
package udp

import (
	"errors"
	"fmt"
	"hash/maphash"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/l4"
)

// DefaultIdleTimeout is the idle timeout of a UDP session whose service
// has Idletime 0.
const DefaultIdleTimeout = 60 * time.Second

// DefaultMaxSessions bounds the session table of a Proxy whose Options do
// not. Each session holds a socket (a file descriptor).
const DefaultMaxSessions = 16384

// maxDatagram is the largest UDP payload.
const maxDatagram = 65535

// MaxPickRetries is how many further real servers a new session may try
// after a socket to one could not be opened.
const MaxPickRetries = 3

const (
	// sweepEvery is how often sessions are checked for their idle timeout.
	sweepEvery = time.Second
	// maxPollSets bounds the poll sets (and their goroutines) of a Proxy.
	maxPollSets = 8
	// slotChunk is the number of slots allocated at once.
	slotChunk = 1024
	// startQueue is how many datagrams of new clients may wait for a
	// starter: a few milliseconds of its work.
	startQueue = 1024
)

// Options configure a Proxy.
type Options struct {
	// Logger receives the proxy's logs; slog.Default when nil.
	Logger *slog.Logger
	// MaxSessions bounds the number of sessions of all services, and so
	// the sockets the proxy holds (at most MaxSessions, and one descriptor
	// per poll set); DefaultMaxSessions when 0.
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
	max     int
	table   *table[key, *session]
	sources *sourceLimiter
	slots   slotTable
	queues  []chan *pending // one per starter
	seed    maphash.Seed    // spreads clients over the queues
	closed  atomic.Bool
	running atomic.Bool  // the goroutines are started (run)
	warned  atomic.Int64 // time of the last rate-limited warning, since epoch

	mu       sync.Mutex     // guards what follows; orders Close against session starts
	free     []int32        // released slots
	next     int32          // slots never used: next to max-1
	sets     []*pollSet     // made by run
	starting sync.WaitGroup // session starts under way (acquire to the end of start)
	stop     chan struct{}  // closed by Close: ends the starters and the sweep
	once     sync.Once

	wg sync.WaitGroup // the goroutines of the poll sets, the starters and the sweep (and, outside Linux, the sessions')
}

// key identifies a session: a client on a VIP socket.
type key struct {
	sock   *net.UDPConn
	client netip.AddrPort
}

// New returns a Proxy and starts its goroutines: a poll set's reader and
// a starter per two CPUs (at most 8 of each) and the idle sweep. Close
// ends them.
func New(o Options) *Proxy {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.MaxSessions <= 0 {
		o.MaxSessions = DefaultMaxSessions
	}
	o.MaxSessions = min(o.MaxSessions, math.MaxInt32)
	p := &Proxy{
		log:     o.Logger,
		max:     o.MaxSessions,
		table:   newTable[key](o.MaxSessions, (*session).rank),
		sources: newSourceLimiter(o.SourceRate, o.SourceBurst),
		slots:   newSlotTable(o.MaxSessions),
		seed:    maphash.MakeSeed(),
		stop:    make(chan struct{}),
	}
	for range min(max((runtime.GOMAXPROCS(0)+1)/2, 1), maxPollSets) {
		p.queues = append(p.queues, make(chan *pending, startQueue))
	}
	if err := p.run(); err != nil {
		p.log.Warn("udp: proxy not started; retrying at the first session", "err", err)
	}
	return p
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

// pending is a datagram of a new client waiting for its session.
type pending struct {
	svc  *Service
	key  key
	data []byte
}

// keepPending is the largest buffer a pending keeps for reuse.
const keepPending = 4096

var pendings = sync.Pool{New: func() any { return &pending{data: make([]byte, 0, 2048)} }}

// release returns pd to the pool, unless its buffer grew large.
func (pd *pending) release() {
	pd.svc, pd.key = nil, key{}
	if cap(pd.data) > keepPending {
		return
	}
	pendings.Put(pd)
}

// enqueue hands the first datagram of a new client to a starter, unless
// the client's address is over its rate of new sessions or the starter is
// behind.
func (p *Proxy) enqueue(s *Service, k key, data []byte) {
	st := s.cfg.Stats
	if p.closed.Load() {
		return
	}
	if !p.running.Load() {
		if err := p.run(); err != nil {
			if !errors.Is(err, errClosed) {
				st.AddError()
				p.warn("udp: no session", "service", s.cfg.Name, "err", err)
			}
			return
		}
	}
	if !p.sources.allow(k.client.Addr(), int64(time.Since(epoch))) {
		st.AddLimitHit(backend.LimitConnRate)
		return
	}
	pd := pendings.Get().(*pending)
	pd.svc, pd.key, pd.data = s, k, append(pd.data[:0], data...)
	q := p.queues[0]
	if len(p.queues) > 1 {
		q = p.queues[maphash.Comparable(p.seed, k.client)%uint64(len(p.queues))]
	}
	select {
	case q <- pd:
	default:
		st.AddLimitHit(backend.LimitConnRate)
		pd.release()
	}
}

// starter makes the sessions of the datagrams queued on q, in order, until
// Close. A client's datagrams all go to the same starter, so the ones it
// sent before its session existed are forwarded in order.
func (p *Proxy) starter(q chan *pending) {
	defer p.wg.Done()
	for {
		select {
		case <-p.stop:
			return
		case pd := <-q:
			if ss, ok := p.table.get(pd.key); ok {
				ss.forward(pd.data)
			} else if ss := pd.svc.start(pd.key, pd.data); ss != nil {
				ss.forward(pd.data)
			}
			pd.release()
		}
	}
}

// Errors of Proxy.acquire.
var (
	errClosed = errors.New("proxy closed")
	errFull   = errors.New("no session slot free")
)

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
	srv, done, fd, err := s.connect(&req)
	if err != nil {
		p.releaseSlot(slot)
		st.Close()
		st.AddError()
		p.log.Debug("udp: no real server", "service", cfg.Name, "client", k.client, "err", err)
		return nil
	}
	ss := &session{svc: s, key: k, srv: srv, done: done, fd: fd, slot: slot, set: p.setOf(slot),
		peer: peerSockaddr(k.sock, k.client)}
	ss.touch()
	if ss.vip, err = k.sock.SyscallConn(); err == nil {
		p.slots.store(slot, ss)
		err = ss.set.add(p, ss)
	}
	if err != nil {
		ss.close()
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
		evicted.close()
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
	victim.close()
	return s.cfg.Stats.TryOpen(int64(s.cfg.MaxConns))
}

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
		fd, local, err := s.dial(srv)
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
// service's Source when it has one of srv's family. A real server given
// by DNS name is resolved here, for each new session. local reports an
// error of this host rather than of the real server.
func (s *Service) dial(srv *backend.Server) (fd int, local bool, err error) {
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
	if src := s.cfg.Source; src.IsValid() && src.Is4() == ap.Addr().Is4() {
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

// Close ends every session and the proxy's goroutines, and waits for
// them. Datagrams handed to a Service after Close are dropped.
func (p *Proxy) Close() error {
	p.mu.Lock()
	p.closed.Store(true)
	sets := p.sets
	p.mu.Unlock()
	p.once.Do(func() { close(p.stop) }) // the starters and the sweep end
	p.starting.Wait()                   // no session start is under way, and none will be
	for _, ss := range p.table.values() {
		ss.close()
	}
	var errs []error
	for _, ps := range sets {
		if err := ps.close(); err != nil && !errors.Is(err, os.ErrClosed) {
			errs = append(errs, fmt.Errorf("udp: %w", err))
		}
	}
	p.wg.Wait()
	return errors.Join(errs...)
}

// acquire takes a slot for a new session (the caller then owes
// p.starting.Done). When every slot is taken, it evicts a session of the
// table; it fails when none can be (every slot is a session being
// started) and when the proxy is closed.
func (p *Proxy) acquire() (int32, error) {
	for range 8 { // bounded: a slot freed by an eviction may go to another socket's start
		p.mu.Lock()
		if p.closed.Load() {
			p.mu.Unlock()
			return -1, errClosed
		}
		if slot, ok := p.takeSlot(); ok {
			p.starting.Add(1)
			p.mu.Unlock()
			return slot, nil
		}
		p.mu.Unlock()
		victim, ok := p.table.evict()
		if !ok {
			break
		}
		victim.svc.cfg.Stats.AddLimitHit(backend.LimitSessions)
		victim.close()
	}
	return -1, errFull
}

// takeSlot returns a free slot; p.mu is held.
func (p *Proxy) takeSlot() (int32, bool) {
	if n := len(p.free); n > 0 {
		slot := p.free[n-1]
		p.free = p.free[:n-1]
		return slot, true
	}
	if int(p.next) >= p.max {
		return -1, false
	}
	slot := p.next
	p.next++
	p.slots.grow(slot)
	return slot, true
}

// releaseSlot frees the slot of a session that ended.
func (p *Proxy) releaseSlot(slot int32) {
	p.slots.store(slot, nil)
	p.mu.Lock()
	p.free = append(p.free, slot)
	p.mu.Unlock()
}

// run makes the poll sets and starts the proxy's goroutines (the sets',
// the starters and the sweep), once: New calls it, and so does the next
// new client if it failed.
func (p *Proxy) run() error {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed.Load() {
		return errClosed
	}
	if p.running.Load() {
		return nil
	}
	sets := make([]*pollSet, 0, len(p.queues))
	for range len(p.queues) {
		ps, err := newPollSet()
		if err != nil {
			for _, ps := range sets {
				_ = ps.close()
			}
			return fmt.Errorf("udp: %w", err)
		}
		sets = append(sets, ps)
	}
	p.sets = sets
	for _, ps := range sets {
		ps.start(p)
	}
	for _, q := range p.queues {
		p.wg.Add(1)
		go p.starter(q)
	}
	p.wg.Add(1)
	go p.sweep()
	p.running.Store(true)
	return nil
}

// setOf returns the poll set of slot.
func (p *Proxy) setOf(slot int32) *pollSet { return p.sets[int(slot)%len(p.sets)] }

// sweep ends idle sessions every sweepEvery until Close.
func (p *Proxy) sweep() {
	defer p.wg.Done()
	t := time.NewTicker(sweepEvery)
	defer t.Stop()
	var idle []*session
	for {
		select {
		case <-p.stop:
			return
		case <-t.C:
		}
		now := int64(time.Since(epoch))
		p.table.each(func(ss *session) {
			if now-ss.last.Load() >= int64(ss.svc.cfg.IdleTimeout) {
				idle = append(idle, ss)
			}
		})
		for _, ss := range idle {
			ss.close()
		}
		clear(idle)
		idle = idle[:0]
	}
}

// warn logs at most one warning every 10 seconds: the causes (no
// descriptor, no memory) come with floods.
func (p *Proxy) warn(msg string, args ...any) {
	now, last := int64(time.Since(epoch)), p.warned.Load()
	if last != 0 && now-last < int64(10*time.Second) {
		return
	}
	if p.warned.CompareAndSwap(last, now) {
		p.log.Warn(msg, args...)
	}
}

// slotTable maps slots to their sessions for the poll sets, whose events
// carry slots. Its chunks are allocated as slots are first used, so a
// large MaxSessions costs nothing until sessions fill it.
type slotTable struct {
	chunks []atomic.Pointer[[slotChunk]atomic.Pointer[session]]
}

func newSlotTable(n int) slotTable {
	return slotTable{chunks: make([]atomic.Pointer[[slotChunk]atomic.Pointer[session]], (n+slotChunk-1)/slotChunk)}
}

// grow allocates the chunk of slot if it has none; Proxy.mu is held.
func (t *slotTable) grow(slot int32) {
	if c := &t.chunks[slot/slotChunk]; c.Load() == nil {
		c.Store(new([slotChunk]atomic.Pointer[session]))
	}
}

// store sets the session of slot, whose chunk grow allocated.
func (t *slotTable) store(slot int32, ss *session) {
	t.chunks[slot/slotChunk].Load()[slot%slotChunk].Store(ss)
}
