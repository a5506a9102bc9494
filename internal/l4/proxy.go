// Package l4 is the layer-4 TCP proxy: for each accepted client connection
// it picks a real server, dials it and copies bytes both ways until both
// sides are done, with half-close and an idle timeout.
//
// Each direction starts as a user-space copy with a pooled buffer taken
// only when data is waiting, which is cheapest for small request/response
// traffic and holds no pipe, and moves to io.Copy between the two
// *net.TCPConn at the first read that fills the buffer, so that on Linux
// the runtime moves bulk transfers with splice(2) instead of through user
// space (see copyAdaptive). The idle timeout therefore does not look at
// individual reads; it asks the kernel instead (see idle_linux.go), and so
// does byte accounting of long connections (Proxy.Account). A connection
// that must be shaped (a service bandwidth or the global throughput
// limit, see Shaper) is copied through user space all along.
//
// Limits checked on accept, before any goroutine is started: the service's
// maximum of concurrent connections and its connection rate. A real
// server's own connection limit is the picker's business: a full server is
// skipped, not failed.
package l4

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
	"github.com/fulcrum-lb/fulcrum/internal/admission"
	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/listener"
	"github.com/fulcrum-lb/fulcrum/internal/sockopt"
)

// DefaultDialTimeout is how long a dial to a real server may take.
const DefaultDialTimeout = 5 * time.Second

// MaxDialRetries is how many further picks a connection gets after a failed
// dial before it is given up and the client connection closed.
const MaxDialRetries = 3

// Options configure a Proxy.
type Options struct {
	// Logger receives the proxy's logs; slog.Default when nil.
	Logger *slog.Logger
	// DialTimeout bounds each dial to a real server; DefaultDialTimeout
	// when 0.
	DialTimeout time.Duration
	// Gate is the ceiling on client connections shared with the other
	// proxies; nil for none.
	Gate *admission.Gate
}

// Proxy owns every proxied connection. One Proxy serves all the Services of
// all configuration generations, so that Close can end every connection,
// whichever generation accepted it.
type Proxy struct {
	log         *slog.Logger
	dialTimeout time.Duration
	gate        *admission.Gate
	ctx         context.Context // cancelled by Close: aborts dials in progress
	cancel      context.CancelFunc

	closed atomic.Bool
	next   atomic.Uint32 // spreads sessions over the shards
	shards [shardCount]shard
	wg     sync.WaitGroup

	scanMu sync.Mutex // serialises Account and CloseService
	scan   []*session // reused by Account
}

// shardCount is the number of session sets: connection setup and teardown
// lock one shard, never a lock shared by every connection.
const shardCount = 32

// shard is one set of sessions. Close marks the Proxy closed and then
// visits every shard under its lock; Handle checks the mark under the
// shard's lock, so a session is either seen by Close or never started.
type shard struct {
	mu       sync.Mutex
	sessions map[*session]struct{}
	_        [48]byte // pad to 64 bytes: shards on separate cache lines
}

// New returns a Proxy.
func New(o Options) *Proxy {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{log: o.Logger, dialTimeout: o.DialTimeout, gate: o.Gate, ctx: ctx, cancel: cancel}
	for i := range p.shards {
		p.shards[i].sessions = map[*session]struct{}{}
	}
	return p
}

// ServiceConfig describes one virtual service of one configuration
// generation.
type ServiceConfig struct {
	// ID is the virtual service's configuration ID; CloseService ends the
	// connections of every generation of the service with this ID.
	ID int
	// Name identifies the service in logs, e.g. "virtualServices[id=3]".
	Name string
	// Picker chooses the real server of each connection. Required.
	Picker balance.Picker
	// IdleTimeout closes a connection when no byte has moved either way for
	// this long; 0 disables it.
	IdleTimeout time.Duration
	// Stats receives the service's counters; may be nil.
	Stats *backend.Counters
	// Source is the local address of server-side connections: the VIP for
	// a non-transparent service, or the zero Addr to let the kernel choose
	// the address of the interface that routes to the real server (which
	// is Fulcrum's own address on the real server's subnet: "subnet
	// originating requests"). It is used only for real servers of the same
	// address family. Transparent overrides it.
	Source netip.Addr
	// Transparent makes server-side connections leave from the client's
	// own address (IP_TRANSPARENT, bound to the client's IP with port 0),
	// so that real servers see it; the host's policy routing must bring
	// the replies back (package hostnet). A real server of the other
	// address family than the client is connected from Source as usual.
	Transparent bool
	// Mark is the SO_MARK of server-side sockets (the packet mark of the
	// service's own default gateway); 0 sets none.
	Mark uint32
	// MaxConns is the maximum of concurrent connections; a connection over
	// it is closed at once and counted (backend.LimitMaxConns). 0 is
	// unlimited.
	MaxConns int
	// ConnRate limits new connections per second; a connection over it is
	// closed at once and counted (backend.LimitConnRate). nil is unlimited.
	ConnRate *rate.Limiter
	// Bandwidth shapes the service's traffic; nil is unlimited.
	Bandwidth *Shaper
	// Throughput shapes the traffic of all services together (the global
	// throughput limit); nil is unlimited.
	Throughput *Shaper
	// AccessLog receives one entry at the end of each connection (the
	// service's accessLog); nil logs nothing.
	AccessLog accesslog.Logger
	// VSName names the service in access log entries: its nickname, or
	// its address:port.
	VSName string
}

// Service proxies the connections of one virtual service. It is a
// listener.Handler.
type Service struct {
	cfg    ServiceConfig
	proxy  *Proxy
	dialer net.Dialer // with Source bound, when there is one
	plain  net.Dialer // without: for real servers of the other family
	transp net.Dialer // transparent: LocalAddr set per connection
	shaped bool
}

// Service returns a Service of p configured by cfg.
func (p *Proxy) Service(cfg ServiceConfig) *Service {
	if cfg.Stats == nil {
		cfg.Stats = new(backend.Counters)
	}
	s := &Service{cfg: cfg, proxy: p, shaped: cfg.Bandwidth != nil || cfg.Throughput != nil}
	// Keep-alive of server connections is turned on by Account once a
	// connection is accountAfter old (see session.account): the first
	// probe comes after a minute of silence anyway, and the short
	// connections that are most of them are spared four setsockopt calls.
	s.plain = net.Dialer{Timeout: p.dialTimeout, KeepAlive: -1}
	if cfg.Mark != 0 {
		s.plain.Control = sockopt.Options{Mark: cfg.Mark}.Control()
	}
	s.dialer = s.plain
	if src := cfg.Source; src.IsValid() && !src.IsUnspecified() {
		s.dialer.LocalAddr = &net.TCPAddr{IP: src.Unmap().AsSlice()}
		s.dialer.Control = sockopt.Options{Mark: cfg.Mark, NoPort: true}.Control()
	} else {
		s.cfg.Source = netip.Addr{}
	}
	if cfg.Transparent {
		s.transp = s.plain
		s.transp.Control = sockopt.Options{Mark: cfg.Mark, Transparent: true, NoPort: true}.Control()
	}
	return s
}

// Config returns the service's configuration.
func (s *Service) Config() ServiceConfig { return s.cfg }

// Handle takes a client connection and proxies it in a new goroutine. A
// connection that is not a *net.TCPConn, that is over a limit, or that
// arrives after Close, is closed.
func (s *Service) Handle(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		s.proxy.log.Error("l4: not a TCP connection", "service", s.cfg.Name, "type", fmt.Sprintf("%T", c))
		_ = c.Close()
		return
	}
	st := s.cfg.Stats
	if s.cfg.ConnRate != nil && !s.cfg.ConnRate.Allow() {
		st.AddLimitHit(backend.LimitConnRate)
		_ = tc.Close()
		return
	}
	if !st.TryOpen(int64(s.cfg.MaxConns)) {
		st.AddLimitHit(backend.LimitMaxConns)
		_ = tc.Close()
		return
	}
	p := s.proxy
	if !p.gate.Enter() {
		st.Close()
		st.AddLimitHit(backend.LimitGlobalConns)
		_ = tc.Close()
		return
	}
	sh := &p.shards[p.next.Add(1)%shardCount]
	ss := &session{svc: s, client: tc, shard: sh, born: time.Now()}
	ss.finIn.Store(-1)
	ss.finOut.Store(-1)
	if s.shaped {
		ss.done = make(chan struct{})
	}
	sh.mu.Lock()
	if p.closed.Load() {
		sh.mu.Unlock()
		st.Close()
		p.gate.Leave()
		_ = tc.Close()
		return
	}
	sh.sessions[ss] = struct{}{}
	p.wg.Add(1)
	sh.mu.Unlock()
	go ss.run()
}

// Active returns the number of client connections being proxied.
func (p *Proxy) Active() int {
	n := 0
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		n += len(sh.sessions)
		sh.mu.Unlock()
	}
	return n
}

// sessions returns the sessions open now whose service matches keep (all
// when keep is nil), in p.scan; p.scanMu is held.
func (p *Proxy) sessions(keep func(*session) bool) []*session {
	list := p.scan[:0]
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		for ss := range sh.sessions {
			if keep == nil || keep(ss) {
				list = append(list, ss)
			}
		}
		sh.mu.Unlock()
	}
	p.scan = list
	return list
}

// CloseService closes the connections of every generation of the service
// with configuration ID id, and returns how many it closed. The runtime
// calls it when the drain time of a removed service ends.
func (p *Proxy) CloseService(id int) int {
	p.scanMu.Lock()
	defer p.scanMu.Unlock()
	list := p.sessions(func(ss *session) bool { return ss.svc.cfg.ID == id })
	for _, ss := range list {
		ss.term.CompareAndSwap(termNone, termClosed)
		ss.close()
	}
	clear(list)
	return len(list)
}

// accountAfter is the age from which Account reads a connection's
// counts: younger ones are most often short and counted when they end.
const accountAfter = time.Second

// Account adds to the counters the bytes that established connections
// have moved since the last call, so that long connections show in the
// byte counters (and rates) while they last rather than only when they
// end. It reads the kernel's count of bytes acknowledged on each socket
// (two getsockopt calls per connection) and leaves the copy path alone.
// It also turns TCP keep-alive (listener.KeepAlive) on for the server side
// of a connection at its first visit.
// Connections younger than accountAfter are left to be counted when they
// end. The runtime calls it once a second.
func (p *Proxy) Account() {
	p.scanMu.Lock()
	defer p.scanMu.Unlock()
	list := p.sessions(nil)
	for _, ss := range list {
		ss.account()
	}
	clear(list)
}

// Close closes every proxied connection, aborts dials in progress and waits
// until every connection's goroutines have returned. Connections handed to
// a Service after Close are closed at once.
func (p *Proxy) Close() error {
	p.closed.Store(true)
	p.scanMu.Lock()
	list := p.sessions(nil)
	p.cancel()
	for _, ss := range list {
		ss.term.CompareAndSwap(termNone, termClosed)
		ss.close()
	}
	clear(list)
	p.scanMu.Unlock()
	p.wg.Wait()
	return nil
}

// session is one client connection and, once dialled, its server side.
type session struct {
	svc    *Service
	client *net.TCPConn
	shard  *shard
	done   chan struct{} // closed by close; only for shaped sessions
	born   time.Time

	mu      sync.Mutex
	server  *net.TCPConn
	srv     *backend.Server
	closed  bool
	ended   bool  // the final byte counts were added
	countIn int64 // bytes already added to the counters by account
	countOu int64
	kept    bool // keep-alive was turned on on the server side

	// finIn and finOut are the byte counts of the directions whose copy has
	// finished (client→server and server→client), or -1: a finished
	// direction is counted exactly, without reading the kernel.
	finIn, finOut atomic.Int64
	// term is why the connection ended (termNone…): the first cause
	// recorded wins.
	term atomic.Uint32
}

// Causes of a connection's end, in session.term, and their names in
// access log entries (accesslog.Entry.Termination).
const (
	termNone     uint32 = iota // both sides closed normally
	termIdle                   // the idle timeout
	termClient                 // the client→server copy failed first (a reset by the client)
	termServer                 // the server→client copy failed first
	termClosed                 // Fulcrum closed it: service removed or drained, or shutdown
	termNoServer               // no real server to pick
	termConnect                // every dial failed
)

var termNames = [...]string{"", "idle-timeout", "client-abort", "server-abort", "closed", "no-server", "connect-failed"}

// logEntry writes the access log entry of the connection that ended,
// when the service logs them; srv is nil when no real server took it.
func (ss *session) logEntry(client netip.AddrPort, srv *backend.Server, retries int, in, out int64) {
	cfg := &ss.svc.cfg
	if cfg.AccessLog == nil {
		return
	}
	c := accesslog.Conn{Kind: accesslog.KindTCP, Born: ss.born, VS: cfg.ID, VSName: cfg.VSName, Client: client,
		Local: ss.client.LocalAddr(), BytesIn: in, BytesOut: out, Retries: retries, Termination: termNames[ss.term.Load()]}
	if srv != nil {
		c.Server, c.ServerID = srv.Addr(), srv.Settings().ID
	}
	accesslog.LogConn(cfg.AccessLog, &c)
}

// close closes both sides; it is safe to call more than once and from any
// goroutine.
func (ss *session) close() {
	ss.mu.Lock()
	if !ss.closed && ss.done != nil {
		close(ss.done)
	}
	ss.closed = true
	server := ss.server
	ss.mu.Unlock()
	_ = ss.client.Close()
	if server != nil {
		_ = server.Close()
	}
}

// setServer records the server side, unless the session was closed
// meanwhile; then it closes c and reports false.
func (ss *session) setServer(c *net.TCPConn, srv *backend.Server) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		_ = c.Close()
		return false
	}
	ss.server, ss.srv = c, srv
	return true
}

// account adds the bytes moved since the last call to the counters.
func (ss *session) account() {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.server == nil || ss.closed || ss.ended || time.Since(ss.born) < accountAfter {
		return
	}
	if !ss.kept {
		ss.kept = true
		if err := ss.server.SetKeepAliveConfig(listener.KeepAlive); err != nil {
			ss.svc.proxy.log.Debug("l4: server keep-alive", "service", ss.svc.cfg.Name, "err", err)
		}
	}
	in, err1 := liveCount(ss.server, &ss.finIn) // delivered to the real server
	out, err2 := liveCount(ss.client, &ss.finOut)
	if err1 != nil || err2 != nil {
		return
	}
	in, out = max(in-ss.countIn, 0), max(out-ss.countOu, 0)
	ss.countIn += in
	ss.countOu += out
	ss.svc.cfg.Stats.AddBytes(in, out)
	ss.srv.AddBytes(in, out)
}

// liveCount returns the bytes copied so far into dst: the final count
// when the direction is done, otherwise what dst's peer acknowledged
// (tcpi_bytes_acked) less 1, because Linux counts the SYN of a socket it
// dialled (not of one it accepted): so the live count never exceeds what
// was written, and is at most one byte short until the direction ends.
func liveCount(dst *net.TCPConn, fin *atomic.Int64) (int64, error) {
	if n := fin.Load(); n >= 0 {
		return n, nil
	}
	n, err := bytesAcked(dst)
	if err != nil {
		return 0, err
	}
	if n := fin.Load(); n >= 0 { // finished meanwhile: the acked count may hold the FIN
		return n, nil
	}
	return max(n-1, 0), nil
}

// end adds the bytes not yet accounted for, from the copy's totals.
func (ss *session) end(in, out int64) {
	ss.mu.Lock()
	ss.ended = true
	in, out = max(in-ss.countIn, 0), max(out-ss.countOu, 0)
	ss.mu.Unlock()
	ss.svc.cfg.Stats.AddBytes(in, out)
	ss.srv.AddBytes(in, out)
}

func (ss *session) run() {
	p, cfg := ss.svc.proxy, &ss.svc.cfg
	defer func() {
		ss.shard.mu.Lock()
		delete(ss.shard.sessions, ss)
		ss.shard.mu.Unlock()
		p.gate.Leave()
		p.wg.Done()
	}()
	defer cfg.Stats.Close() // Handle counted the connection

	req := balance.Request{}
	if a, ok := ss.client.RemoteAddr().(*net.TCPAddr); ok {
		req.Client = a.AddrPort()
	}
	srv, done, dialed, server, err := ss.svc.connect(&req)
	if err != nil {
		if p.ctx.Err() == nil {
			cfg.Stats.AddError()
			if len(req.Avoid) > 0 {
				ss.term.CompareAndSwap(termNone, termConnect)
			} else {
				ss.term.CompareAndSwap(termNone, termNoServer)
			}
		} else {
			ss.term.CompareAndSwap(termNone, termClosed)
		}
		p.log.Debug("l4: no real server", "service", cfg.Name, "client", req.Client, "err", err)
		ss.close()
		ss.logEntry(req.Client, nil, max(len(req.Avoid)-1, 0), 0, 0)
		return
	}
	// The connection's outcome is its dial's: the server accepted it in
	// dialed (a failed dial was reported by connect).
	defer func() { done(balance.Outcome{Latency: dialed}) }()
	if !ss.setServer(server, srv) {
		ss.close()
		ss.logEntry(req.Client, srv, len(req.Avoid), 0, 0)
		return
	}
	untrack := srv.Track(server)
	defer untrack()

	var in, out int64
	if ss.svc.shaped {
		in, out = ss.pipeShaped(server)
	} else {
		in, out = pipe(ss.client, server, cfg.IdleTimeout, ss.close, &ss.finIn, &ss.finOut, &ss.term)
	}
	ss.end(in, out)
	ss.close()
	ss.logEntry(req.Client, srv, len(req.Avoid), in, out)
}

// connect picks a real server and dials it, and returns the picker's done
// func and how long the dial took. After a failed dial (counted on the
// server and reported to the picker as the outcome) it picks again with
// that server avoided, at most MaxDialRetries times.
func (s *Service) connect(req *balance.Request) (*backend.Server, func(balance.Outcome), time.Duration, *net.TCPConn, error) {
	p := s.proxy
	var lastErr error
	for range MaxDialRetries + 1 {
		srv, done, err := s.cfg.Picker.Pick(req)
		if err != nil {
			if lastErr != nil {
				return nil, nil, 0, nil, fmt.Errorf("%w (last dial: %w)", err, lastErr)
			}
			return nil, nil, 0, nil, err
		}
		start := time.Now()
		c, err := s.dialServer(srv, req.Client.Addr())
		if err != nil {
			if p.ctx.Err() != nil { // Close aborted the dial: not the server's fault
				done(balance.Outcome{})
				return nil, nil, 0, nil, err
			}
			srv.AddFailure()
			done(balance.Outcome{Err: fmt.Errorf("dial: %w", err)})
			p.log.Debug("l4: dial failed", "service", s.cfg.Name, "server", srv.Addr(), "err", err)
			req.Avoid = append(req.Avoid, srv)
			lastErr = err
			continue
		}
		d := max(time.Since(start), 1)
		srv.ObserveConnect(d)
		return srv, done, d, c, nil
	}
	return nil, nil, 0, nil, fmt.Errorf("%d dials failed, last: %w", MaxDialRetries+1, lastErr)
}

// dialServer opens the server-side connection to srv: from client, the
// client's address, when the service is transparent and srv is of its
// family; else from the service's Source when it has one of srv's family.
func (s *Service) dialServer(srv *backend.Server, client netip.Addr) (*net.TCPConn, error) {
	d := &s.dialer
	ap, ok := srv.AddrPort()
	if ok && s.cfg.Source.IsValid() && ap.Addr().Is4() != s.cfg.Source.Is4() {
		d = &s.plain
	}
	if s.cfg.Transparent && ok && client.IsValid() && client.Unmap().Is4() == ap.Addr().Unmap().Is4() {
		t := s.transp // a copy: its LocalAddr is this connection's
		t.LocalAddr = &net.TCPAddr{IP: client.Unmap().AsSlice()}
		d = &t
	}
	c, err := d.DialContext(s.proxy.ctx, "tcp", srv.Addr())
	if err != nil {
		return nil, err
	}
	return c.(*net.TCPConn), nil
}

// pipe copies client→server and server→client until both directions are
// done and returns the bytes copied each way. A direction that reaches EOF
// half-closes its destination (CloseWrite) and the other direction carries
// on; a direction that fails calls abort, which closes both connections
// and so ends the other direction too. With idle > 0 a watchdog calls
// abort when no byte has moved either way for idle. Each direction stores
// its count in finIn or finOut as soon as it is done, and records the
// first cause of an abnormal end in term.
func pipe(client, server *net.TCPConn, idle time.Duration, abort func(), finIn, finOut *atomic.Int64, term *atomic.Uint32) (in, out int64) {
	if idle > 0 {
		w := watch(client, server, idle, abort, term)
		defer w.stop()
	}
	up := make(chan int64, 1)
	var ended atomic.Int32
	go func() {
		n, err := copyAdaptive(server, client)
		finIn.Store(n)
		finish(server, err, abort, &ended, term, termClient)
		up <- n
	}()
	n, err := copyAdaptive(client, server)
	finOut.Store(n)
	finish(client, err, abort, &ended, term, termServer)
	return <-up, n
}

// finish ends one direction whose copy into dst returned err. ended counts
// the directions that have ended: the first to reach EOF half-closes dst;
// the last does not, as both connections are closed next, which sends
// the FIN (a shutdown call saved per connection).
// A failed direction records cause in term unless a cause is there.
func finish(dst *net.TCPConn, err error, abort func(), ended *atomic.Int32, term *atomic.Uint32, cause uint32) {
	if err != nil {
		term.CompareAndSwap(termNone, cause)
		ended.Add(1)
		abort()
		return
	}
	if ended.Add(1) == 1 {
		_ = dst.CloseWrite()
	}
}
