// Package l4 is the layer-4 TCP proxy: for each accepted client connection
// it picks a real server, dials it and copies bytes both ways until both
// sides are done, with half-close and an idle timeout.
//
// Copying uses io.Copy between the two *net.TCPConn, never wrapped, so that
// on Linux the runtime moves the bytes with splice(2) through a pipe
// instead of through user space. The idle timeout therefore cannot see
// individual reads; it asks the kernel instead (see idle_linux.go).
package l4

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
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
}

// Proxy owns every proxied connection. One Proxy serves all the Services of
// all configuration generations, so that Close can end every connection,
// whichever generation accepted it.
type Proxy struct {
	log    *slog.Logger
	dialer net.Dialer
	ctx    context.Context // cancelled by Close: aborts dials in progress
	cancel context.CancelFunc

	closed atomic.Bool
	next   atomic.Uint32 // spreads sessions over the shards
	shards [shardCount]shard
	wg     sync.WaitGroup
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
	p := &Proxy{
		log:    o.Logger,
		dialer: net.Dialer{Timeout: o.DialTimeout},
		ctx:    ctx,
		cancel: cancel,
	}
	for i := range p.shards {
		p.shards[i].sessions = map[*session]struct{}{}
	}
	return p
}

// ServiceConfig describes one virtual service of one configuration
// generation.
type ServiceConfig struct {
	// Name identifies the service in logs, e.g. "virtualServices[id=3]".
	Name string
	// Picker chooses the real server of each connection. Required.
	Picker balance.Picker
	// IdleTimeout closes a connection when no byte has moved either way for
	// this long; 0 disables it.
	IdleTimeout time.Duration
	// Stats receives the service's counters; may be nil.
	Stats *backend.Counters
}

// Service proxies the connections of one virtual service. It is a
// listener.Handler.
type Service struct {
	cfg   ServiceConfig
	proxy *Proxy
}

// Service returns a Service of p configured by cfg.
func (p *Proxy) Service(cfg ServiceConfig) *Service {
	if cfg.Stats == nil {
		cfg.Stats = new(backend.Counters)
	}
	return &Service{cfg: cfg, proxy: p}
}

// Config returns the service's configuration.
func (s *Service) Config() ServiceConfig { return s.cfg }

// Handle takes a client connection and proxies it in a new goroutine. A
// connection that is not a *net.TCPConn, or that arrives after Close, is
// closed.
func (s *Service) Handle(c net.Conn) {
	tc, ok := c.(*net.TCPConn)
	if !ok {
		s.proxy.log.Error("l4: not a TCP connection", "service", s.cfg.Name, "type", fmt.Sprintf("%T", c))
		_ = c.Close()
		return
	}
	p := s.proxy
	sh := &p.shards[p.next.Add(1)%shardCount]
	ss := &session{svc: s, client: tc, shard: sh}
	sh.mu.Lock()
	if p.closed.Load() {
		sh.mu.Unlock()
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

// Close closes every proxied connection, aborts dials in progress and waits
// until every connection's goroutines have returned. Connections handed to
// a Service after Close are closed at once.
func (p *Proxy) Close() error {
	p.closed.Store(true)
	var list []*session
	for i := range p.shards {
		sh := &p.shards[i]
		sh.mu.Lock()
		for ss := range sh.sessions {
			list = append(list, ss)
		}
		sh.mu.Unlock()
	}
	p.cancel()
	for _, ss := range list {
		ss.close()
	}
	p.wg.Wait()
	return nil
}

// session is one client connection and, once dialled, its server side.
type session struct {
	svc    *Service
	client *net.TCPConn
	shard  *shard

	mu     sync.Mutex
	server *net.TCPConn
	closed bool
}

// close closes both sides; it is safe to call more than once and from any
// goroutine.
func (ss *session) close() {
	ss.mu.Lock()
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
func (ss *session) setServer(c *net.TCPConn) bool {
	ss.mu.Lock()
	defer ss.mu.Unlock()
	if ss.closed {
		_ = c.Close()
		return false
	}
	ss.server = c
	return true
}

func (ss *session) run() {
	p, cfg := ss.svc.proxy, &ss.svc.cfg
	defer func() {
		ss.shard.mu.Lock()
		delete(ss.shard.sessions, ss)
		ss.shard.mu.Unlock()
		p.wg.Done()
	}()
	cfg.Stats.Open()
	defer cfg.Stats.Close()

	req := balance.Request{}
	if a, ok := ss.client.RemoteAddr().(*net.TCPAddr); ok {
		req.Client = a.AddrPort()
	}
	srv, done, server, err := ss.svc.connect(&req)
	if err != nil {
		p.log.Debug("l4: no real server", "service", cfg.Name, "client", req.Client, "err", err)
		ss.close()
		return
	}
	defer done()
	if !ss.setServer(server) {
		ss.close()
		return
	}
	untrack := srv.Track(server)
	defer untrack()

	in, out := pipe(ss.client, server, cfg.IdleTimeout, ss.close)
	cfg.Stats.AddBytes(in, out)
	srv.AddBytes(in, out)
	ss.close()
}

// connect picks a real server and dials it. After a failed dial (counted
// on the server) it picks again with that server avoided, at most
// MaxDialRetries times.
func (s *Service) connect(req *balance.Request) (*backend.Server, func(), *net.TCPConn, error) {
	p := s.proxy
	var lastErr error
	for range MaxDialRetries + 1 {
		srv, done, err := s.cfg.Picker.Pick(req)
		if err != nil {
			if lastErr != nil {
				return nil, nil, nil, fmt.Errorf("%w (last dial: %w)", err, lastErr)
			}
			return nil, nil, nil, err
		}
		c, err := p.dialer.DialContext(p.ctx, "tcp", srv.Addr())
		if err != nil {
			done()
			if p.ctx.Err() != nil { // Close aborted the dial: not the server's fault
				return nil, nil, nil, err
			}
			srv.AddFailure()
			p.log.Debug("l4: dial failed", "service", s.cfg.Name, "server", srv.Addr(), "err", err)
			req.Avoid = append(req.Avoid, srv)
			lastErr = err
			continue
		}
		return srv, done, c.(*net.TCPConn), nil
	}
	return nil, nil, nil, fmt.Errorf("%d dials failed, last: %w", MaxDialRetries+1, lastErr)
}

// pipe copies client→server and server→client until both directions are
// done and returns the bytes copied each way. A direction that reaches EOF
// half-closes its destination (CloseWrite) and the other direction carries
// on; a direction that fails calls abort, which closes both connections
// and so ends the other direction too. With idle > 0 a watchdog calls
// abort when no byte has moved either way for idle.
func pipe(client, server *net.TCPConn, idle time.Duration, abort func()) (in, out int64) {
	if idle > 0 {
		w := watch(client, server, idle, abort)
		defer w.stop()
	}
	up := make(chan int64, 1)
	go func() {
		n, err := io.Copy(server, client)
		finish(server, err, abort)
		up <- n
	}()
	n, err := io.Copy(client, server)
	finish(client, err, abort)
	return <-up, n
}

// finish ends one direction whose copy into dst returned err.
func finish(dst *net.TCPConn, err error, abort func()) {
	if err == nil {
		_ = dst.CloseWrite()
		return
	}
	abort()
}
