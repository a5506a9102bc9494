// Package l7 is the layer-7 HTTP proxy of http and http2 virtual
// services: HTTP/1.1 (and HTTP/2 over TLS) towards clients, HTTP/1.1
// keep-alive connections towards real servers, content rules and SubVSs,
// header policy, edge limits, retries and the error answers clients see.
//
// The HTTP/1.1 path is hand-written for speed: one goroutine per client
// connection does everything (read the request head with the strict
// parser of package h1, choose a real server, forward the head and stream
// the body, read the response and stream it back), with buffers owned by
// the connection and no allocation per request on the common path. HTTP/2
// clients are served by golang.org/x/net/http2 with a handler that uses
// the same upstream code.
//
// A Proxy is long-lived and owns every connection; a Service is one
// virtual service, a listener.Handler whose routing state is swapped
// atomically by Update on reload, so keep-alive connections carry on with
// the new configuration from their next request.
package l7

//lint:file-ignore SA1019 x/net/http2's Server.ServeConn is deprecated in favour of net/http's built-in HTTP/2, which cannot serve a connection accepted elsewhere and already read through the h2guard; it is still maintained and is what lets the proxy own its connections.

import (
	"context"
	"crypto/tls"
	"errors"
	"log/slog"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/time/rate"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
	"github.com/fulcrum-lb/fulcrum/internal/admission"
	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/l4"
	"github.com/fulcrum-lb/fulcrum/internal/l7/rules"
	"github.com/fulcrum-lb/fulcrum/internal/sockopt"
)

// Defaults of the limits and timeouts (config.HTTPSettings documents them).
const (
	DefaultMaxHeaderBytes = 16 << 10
	DefaultMaxHeaders     = 100
	DefaultMaxURI         = 8192
	DefaultHeaderTimeout  = 10 * time.Second
	DefaultBodyTimeout    = 60 * time.Second
	DefaultIdleTimeout    = 660 * time.Second
	DefaultMaxStreams     = 100
	DefaultRetries        = 2
	DefaultRetryTimeout   = 10 * time.Second
	DefaultDialTimeout    = 5 * time.Second
	// MaxIdlePerServer bounds the idle keep-alive connections kept to one
	// real server.
	MaxIdlePerServer = 256
	// UpstreamIdleTimeout closes keep-alive connections to real servers
	// idle for longer.
	UpstreamIdleTimeout = 60 * time.Second
	// DefaultBodyMinRate is the minimum average rate, in bytes per second,
	// of a body moved from or to a client once BodyTimeout has passed.
	DefaultBodyMinRate = 500
)

// Options configure a Proxy.
type Options struct {
	// Logger receives the proxy's logs; slog.Default when nil.
	Logger *slog.Logger
	// DialTimeout bounds each connect (and TLS handshake) to a real
	// server; DefaultDialTimeout when 0.
	DialTimeout time.Duration
	// Gate is the ceiling on client connections shared with the other
	// proxies; nil for none.
	Gate *admission.Gate
}

// Proxy owns every client connection of every Service and the keep-alive
// connections to real servers. One Proxy serves all generations.
type Proxy struct {
	log    *slog.Logger
	dialer net.Dialer
	gate   *admission.Gate
	box    *penaltyBox
	ctx    context.Context
	cancel context.CancelFunc

	mu     sync.Mutex
	conns  map[net.Conn]*connMark
	ups    map[net.Conn]struct{} // connections to real servers, idle or in use
	pools  map[*upstreamPool]struct{}
	closed bool
	wg     sync.WaitGroup

	janitorDone chan struct{}

	tls TLSCounters
}

// TLSCounters count the TLS handshakes of a Proxy.
type TLSCounters struct {
	clientHandshakes atomic.Int64 // with clients, completed
	clientResumed    atomic.Int64 // of which resumed a session
	clientOpen       atomic.Int64 // client TLS connections open now
	serverFull       atomic.Int64 // full (not resumed) handshakes with real servers
}

// TLSStats are TLSCounters read at one moment.
type TLSStats struct {
	// ClientHandshakes counts the TLS handshakes completed with clients;
	// ClientResumed those that resumed a session (session ticket).
	ClientHandshakes, ClientResumed int64
	// ClientOpen is the client TLS connections open now.
	ClientOpen int64
	// ServerFullHandshakes counts the full handshakes (a key exchange, no
	// resumed session) with real servers of re-encrypting services.
	ServerFullHandshakes int64
}

// TLSStats returns the proxy's TLS counters.
func (p *Proxy) TLSStats() TLSStats {
	return TLSStats{ClientHandshakes: p.tls.clientHandshakes.Load(), ClientResumed: p.tls.clientResumed.Load(),
		ClientOpen: p.tls.clientOpen.Load(), ServerFullHandshakes: p.tls.serverFull.Load()}
}

// New returns a Proxy; Close it to end every connection.
func New(o Options) *Proxy {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.DialTimeout <= 0 {
		o.DialTimeout = DefaultDialTimeout
	}
	ctx, cancel := context.WithCancel(context.Background())
	p := &Proxy{
		log:         o.Logger,
		dialer:      net.Dialer{Timeout: o.DialTimeout},
		gate:        o.Gate,
		box:         newPenaltyBox(),
		ctx:         ctx,
		cancel:      cancel,
		conns:       map[net.Conn]*connMark{},
		ups:         map[net.Conn]struct{}{},
		janitorDone: make(chan struct{}),
	}
	go p.janitor()
	return p
}

// Close closes every client connection and every idle connection to real
// servers, and waits until all of the proxy's goroutines have returned.
// Connections handed to a Service afterwards are closed at once.
func (p *Proxy) Close() error {
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return nil
	}
	p.closed = true
	list := make([]net.Conn, 0, len(p.conns)+len(p.ups))
	for c := range p.conns {
		list = append(list, c)
	}
	for c := range p.ups { // unblocks requests waiting on a real server
		list = append(list, c)
	}
	p.mu.Unlock()
	p.cancel()
	for _, c := range list {
		_ = c.Close()
	}
	p.wg.Wait()
	<-p.janitorDone
	return nil
}

// Active returns the number of client connections being served.
func (p *Proxy) Active() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

func (p *Proxy) track(c net.Conn, m *connMark) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		return false
	}
	p.conns[c] = m
	p.wg.Add(1)
	return true
}

func (p *Proxy) untrack(c net.Conn) {
	p.mu.Lock()
	delete(p.conns, c)
	p.mu.Unlock()
	p.wg.Done()
}

// janitor closes upstream connections idle for too long, every 10 s, and
// every idle one when the proxy closes.
func (p *Proxy) janitor() {
	defer close(p.janitorDone)
	t := time.NewTicker(10 * time.Second)
	defer t.Stop()
	for {
		select {
		case <-p.ctx.Done():
			for _, up := range p.upstreams() {
				up.close()
			}
			return
		case now := <-t.C:
			for _, up := range p.upstreams() {
				up.expire(now)
			}
		}
	}
}

func (p *Proxy) upstreams() []*upstreamPool {
	p.mu.Lock()
	defer p.mu.Unlock()
	list := make([]*upstreamPool, 0, len(p.pools))
	for up := range p.pools {
		list = append(list, up)
	}
	return list
}

// Persistence is the hook of the persistence decorator (internal/persist):
// one call chooses the real server of a request, one decorates the
// response (a Set-Cookie for the cookie modes). nil means none: the
// Picker alone chooses.
type Persistence interface {
	// Choose picks a real server for the request, from the persistence
	// table or else from next; it follows balance.Picker's contract.
	Choose(next balance.Picker, req *balance.Request, r RequestInfo) (*backend.Server, func(balance.Outcome), error)
	// Respond is called with the server that answered and its response
	// header fields, before the response head is sent; it may add headers
	// (Set-Cookie) with add.
	Respond(srv *backend.Server, r RequestInfo, resp Fields, add func(name, value string))
}

// RequestInfo is what persistence sees of a request, for either protocol.
type RequestInfo interface {
	rules.Request
	Fields
	// Cookie returns the value of the named cookie, or nil.
	Cookie(name string) []byte
	// Client is the client's address and port.
	Client() netip.AddrPort
	// IsTLS reports whether the client connection is TLS.
	IsTLS() bool
}

// Fields gives access to every header field of a message.
type Fields interface {
	// VisitFields calls fn with every end-to-end header field, in order.
	// The slices are valid during the call only.
	VisitFields(fn func(name, value []byte))
}

// Pool is one service or SubVS: the real servers its requests go to and
// what it does with them.
type Pool struct {
	// Name identifies the pool in logs, e.g. "virtualServices[id=3]".
	Name string
	// Picker chooses the real server. Required.
	Picker balance.Picker
	// Persist decorates Picker; nil for none.
	Persist Persistence
	// HashURL puts the request path in balance.Request.HashKey (uhash).
	HashURL bool
	// Sorry receives the requests when Picker has no server; nil for none.
	Sorry *backend.Server
	// Reencrypt is the TLS configuration towards the real servers; nil
	// for plain HTTP.
	Reencrypt *tls.Config
	// PassSNI sends the client's SNI to the real servers.
	PassSNI bool
	// HostRewrite replaces the Host header; "" keeps it.
	HostRewrite string
	// RequestRules and ResponseRules are the pool's header and URL rules,
	// applied after the service's.
	RequestRules, ResponseRules []*rules.Rule
	// ErrorCode, ErrorURL and ErrorPage say what clients get when no real
	// server is available (see config.HTTPSettings).
	ErrorCode int
	ErrorURL  string
	ErrorPage []byte
	// Stats counts the pool's requests as connections; may be nil.
	Stats *backend.Counters
	// HTTP counts the requests of a SubVS pool (the service's own
	// counters are ServiceConfig.HTTP); nil for none.
	HTTP *backend.HTTPCounters
	// SubVS and SubVSName identify a SubVS pool in access log entries
	// (0 and "" for the service's own pool).
	SubVS     int
	SubVSName string
}

// SubVS is a pool chosen by match rules.
type SubVS struct {
	// Select are the match rules choosing the SubVS; empty makes it a
	// default for requests no other SubVS matched.
	Select []*rules.Rule
	// Pool is where its requests go.
	Pool *Pool
}

// ServiceConfig is one virtual service of one configuration generation.
type ServiceConfig struct {
	// Name identifies the service in logs.
	Name string
	// TLS terminates client TLS; nil for plain HTTP. Its NextProtos decide
	// HTTP/2 ("h2" first) or HTTP/1.1 only.
	TLS *tls.Config
	// Pool is the service's own real servers; nil when it has SubVSs.
	Pool *Pool
	// SubVSs are chosen in order by their rules.
	SubVSs []SubVS
	// PreRules set flags before anything else.
	PreRules []*rules.Rule
	// RequestRules and ResponseRules are applied to every request and
	// response of the service.
	RequestRules, ResponseRules []*rules.Rule
	// AddVia is the forwarding-header mode (config.AddViaModes).
	AddVia string
	// TrustedProxies are the clients whose X-Forwarded-For is kept.
	TrustedProxies []netip.Prefix
	// PerRequest schedules every request (config Options.AlwaysPersist
	// "yes" or "accept-changes"); otherwise a keep-alive connection stays
	// on the real server its first request went to while it is available.
	PerRequest bool
	// Limits and timeouts; zero values take the package defaults.
	MaxHeaderBytes, MaxHeaders, MaxURI int
	HeaderTimeout, BodyTimeout         time.Duration
	// IdleTimeout closes a keep-alive client connection idle this long,
	// and bounds the wait for a real server's response.
	IdleTimeout time.Duration
	// BodyMinRate is the minimum average rate, in bytes per second, at
	// which a client must send a request body and read a response body
	// once BodyTimeout has passed (only the time spent waiting for the
	// client counts); 0 takes DefaultBodyMinRate, negative turns it off.
	BodyMinRate int64
	// ResponseTimeout bounds the wait for a real server's response head
	// once the request was sent; 0 takes IdleTimeout.
	ResponseTimeout time.Duration
	// MaxStreams bounds concurrent HTTP/2 streams per connection.
	MaxStreams int
	// Retries and RetryTimeout bound retries on other real servers.
	Retries      int
	RetryTimeout time.Duration
	// Stats counts the service's client connections and the bytes of
	// its clients (header and body, both ways, as on the wire before
	// TLS; see docs/observability.md for HTTP/2); may be nil.
	Stats *backend.Counters
	// HTTP counts every request of the service (those passed to SubVSs
	// included); may be nil.
	HTTP *backend.HTTPCounters
	// AccessLog receives one entry per request when the service's access
	// log is on; nil for off.
	AccessLog accesslog.Logger
	// VS and VSName identify the service in access log entries.
	VS     int
	VSName string
	// MaxConns closes new client connections beyond this many open ones
	// (LoadMaster MaxConnsLimit); 0 is unlimited.
	MaxConns int
	// ConnRate, when set, closes new client connections above its rate
	// (ConnsPerSecLimit); share one between generations.
	ConnRate *rate.Limiter
	// RequestRate, when set, answers 429 to requests above its rate
	// (RequestsPerSecLimit); share one between generations.
	RequestRate *rate.Limiter
	// Bandwidth shapes the bytes of each client connection of the service
	// (both ways, TLS included; LoadMaster's per-service bandwidth
	// limit); nil is unlimited. A shaped connection is not spliced.
	Bandwidth *l4.Shaper
	// Throughput shapes the client connections of all services together
	// (the global throughput limit); nil is unlimited.
	Throughput *l4.Shaper
	// Mark is the SO_MARK of the connections to real servers (the packet
	// mark of the service's own default gateway); 0 sets none.
	Mark uint32
	// Transparent makes connections to real servers leave from the
	// client's own address (IP_TRANSPARENT), so that real servers see it;
	// such a connection is kept for reuse by requests of the same client
	// address only. A real server of the other address family than the
	// client is connected from Fulcrum's address.
	Transparent bool
}

func (c *ServiceConfig) setDefaults() {
	if c.MaxHeaderBytes <= 0 {
		c.MaxHeaderBytes = DefaultMaxHeaderBytes
	}
	if c.MaxHeaders <= 0 {
		c.MaxHeaders = DefaultMaxHeaders
	}
	if c.MaxURI <= 0 {
		c.MaxURI = DefaultMaxURI
	}
	if c.HeaderTimeout <= 0 {
		c.HeaderTimeout = DefaultHeaderTimeout
	}
	if c.BodyTimeout <= 0 {
		c.BodyTimeout = DefaultBodyTimeout
	}
	if c.IdleTimeout <= 0 {
		c.IdleTimeout = DefaultIdleTimeout
	}
	if c.BodyMinRate == 0 {
		c.BodyMinRate = DefaultBodyMinRate
	}
	if c.ResponseTimeout <= 0 {
		c.ResponseTimeout = c.IdleTimeout
	}
	if c.MaxStreams <= 0 {
		c.MaxStreams = DefaultMaxStreams
	}
	if c.Retries < 0 {
		c.Retries = 0
	}
	if c.RetryTimeout <= 0 {
		c.RetryTimeout = DefaultRetryTimeout
	}
	if c.AddVia == "" {
		c.AddVia = "xff"
	}
	if c.Stats == nil {
		c.Stats = new(backend.Counters)
	}
	if c.HTTP == nil {
		c.HTTP = new(backend.HTTPCounters)
	}
}

// state is a compiled ServiceConfig with its upstream pools.
type state struct {
	cfg       ServiceConfig
	pools     map[*Pool]*upstreamPool
	h2        *http2.Server
	needsBody bool
}

// Service serves one virtual service; it is a listener.Handler.
type Service struct {
	proxy  *Proxy
	st     atomic.Pointer[state]
	closed atomic.Bool
}

// ErrNoPool is returned for a configuration without a pool or SubVS.
var ErrNoPool = errors.New("l7: a service needs a pool or SubVSs")

// Service returns a Service of p serving cfg.
func (p *Proxy) Service(cfg ServiceConfig) (*Service, error) {
	s := &Service{proxy: p}
	if err := s.Update(cfg); err != nil {
		return nil, err
	}
	return s, nil
}

// Update makes cfg the service's configuration. Connections in progress
// use it from their next request; idle connections to real servers of the
// previous configuration are closed.
func (s *Service) Update(cfg ServiceConfig) error {
	if cfg.Pool == nil && len(cfg.SubVSs) == 0 {
		return ErrNoPool
	}
	cfg.setDefaults()
	st := &state{cfg: cfg, pools: map[*Pool]*upstreamPool{}}
	add := func(pl *Pool) {
		if pl == nil || st.pools[pl] != nil {
			return
		}
		st.pools[pl] = newUpstreamPool(s.proxy, pl, sockopt.Options{Mark: cfg.Mark, Transparent: cfg.Transparent, NoPort: cfg.Transparent})
	}
	add(cfg.Pool)
	for _, sv := range cfg.SubVSs {
		add(sv.Pool)
		for _, r := range sv.Select {
			if r.NeedsBody() {
				st.needsBody = true
			}
		}
	}
	for _, r := range cfg.PreRules {
		if r.NeedsBody() {
			st.needsBody = true
		}
	}
	// IdleTimeout stays 0: the connection's own timer does that job (see
	// h2conn.checkIdle), x/net's kept ended connections in memory.
	st.h2 = &http2.Server{
		MaxConcurrentStreams: uint32(cfg.MaxStreams),
		MaxReadFrameSize:     16 << 10,
		// A client that stops reading altogether is dropped when nothing
		// could be written to it for the body timeout.
		WriteByteTimeout:             cfg.BodyTimeout,
		MaxUploadBufferPerConnection: 1 << 20,
		MaxUploadBufferPerStream:     1 << 18,
		MaxDecoderHeaderTableSize:    4096,
		MaxEncoderHeaderTableSize:    4096,
	}
	old := s.st.Swap(st)
	if old != nil {
		for _, up := range old.pools {
			up.close()
		}
	}
	return nil
}

// Config returns the configuration in force.
func (s *Service) Config() ServiceConfig { return s.st.Load().cfg }

// Close retires a service that no configuration uses any more (or a
// candidate that was never put in force): new connections handed to it
// are closed and its idle connections to real servers are closed.
// Connections in progress finish; Proxy.Close ends them.
func (s *Service) Close() error {
	s.closed.Store(true)
	for _, up := range s.st.Load().pools {
		up.close()
	}
	return nil
}

// Handle takes a client connection and serves it in a new goroutine.
func (s *Service) Handle(c net.Conn) {
	p := s.proxy
	cfg := &s.st.Load().cfg
	if s.closed.Load() {
		_ = c.Close()
		return
	}
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok && p.box.refused(a.AddrPort().Addr(), time.Now()) {
		cfg.Stats.AddLimitHit(backend.LimitAbuse)
		_ = c.Close()
		return
	}
	if cfg.MaxConns > 0 && cfg.Stats.Active() >= int64(cfg.MaxConns) && !p.makeRoom(s) {
		cfg.Stats.AddLimitHit(backend.LimitMaxConns)
		_ = c.Close()
		return
	}
	if cfg.ConnRate != nil && !cfg.ConnRate.Allow() {
		cfg.Stats.AddLimitHit(backend.LimitConnRate)
		_ = c.Close()
		return
	}
	if !p.gate.Enter() {
		if !p.makeRoom(nil) {
			cfg.Stats.AddLimitHit(backend.LimitGlobalConns)
			_ = c.Close()
			return
		}
		// The closed connection leaves the gate when its goroutine ends:
		// until then the ceiling is passed by one.
		p.gate.ForceEnter()
	}
	m := &connMark{svc: s}
	if !p.track(c, m) {
		p.gate.Leave()
		_ = c.Close()
		return
	}
	stats := cfg.Stats
	stats.Open() // here, not in the goroutine, so that MaxConns sees it at once
	go func() {
		defer p.untrack(c)
		defer p.gate.Leave()
		defer stats.Close()
		s.serve(c, m)
	}()
}

// serve runs one client connection: the TLS handshake if any, then HTTP/2
// or the HTTP/1.1 loop. The handshake is done in its own function so that
// its large frame is gone while the connection waits for requests: the
// goroutine parks in a shallow stack, which the runtime shrinks.
func (s *Service) serve(c net.Conn, m *connMark) {
	var client netip.AddrPort
	if a, ok := c.RemoteAddr().(*net.TCPAddr); ok {
		client = a.AddrPort()
		client = netip.AddrPortFrom(client.Addr().Unmap(), client.Port())
	}
	raw, _ := c.(*net.TCPConn)
	if cfg := &s.st.Load().cfg; cfg.Bandwidth != nil || cfg.Throughput != nil {
		// Shaped: every byte goes through the shapers, none is spliced or
		// written by a raw system call.
		c, raw = newShapedConn(c, cfg.Bandwidth, cfg.Throughput, cfg.Stats, s.proxy.ctx.Done()), nil
	}
	conn, sni, ok := s.handshake(c, client, m)
	if !ok {
		return
	}
	if conn != c {
		defer s.proxy.tls.clientOpen.Add(-1)
	}
	newConnState(s, conn, raw, conn != c, client, sni, m).serve()
	_ = conn.Close()
}

// handshake runs the TLS handshake of a service with TLS and serves an
// HTTP/2 connection to its end (then ok is false). It returns the
// connection to serve HTTP/1.1 on and the server name the client asked
// for.
func (s *Service) handshake(c net.Conn, client netip.AddrPort, m *connMark) (conn net.Conn, sni string, ok bool) {
	st := s.st.Load()
	if st.cfg.TLS == nil {
		return c, "", true
	}
	tc := tls.Server(c, st.cfg.TLS)
	_ = c.SetDeadline(time.Now().Add(st.cfg.HeaderTimeout))
	if err := tc.HandshakeContext(s.proxy.ctx); err != nil {
		s.proxy.log.Debug("l7: TLS handshake failed", "service", st.cfg.Name, "client", client, "err", err)
		_ = c.Close()
		return nil, "", false
	}
	_ = c.SetDeadline(time.Time{})
	cs := tc.ConnectionState()
	t := &s.proxy.tls
	t.clientHandshakes.Add(1)
	if cs.DidResume {
		t.clientResumed.Add(1)
	}
	t.clientOpen.Add(1)
	if cs.NegotiatedProtocol == "h2" {
		s.serveH2(tc, client, cs.ServerName, m)
		t.clientOpen.Add(-1)
		return nil, "", false
	}
	return tc, cs.ServerName, true
}
