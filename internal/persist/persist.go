// Package persist implements LoadMaster's persistence modes: a decorator
// around any balance.Picker that sends a returning client back to the real
// server it used before, as long as that server can take it.
//
// A Persister is built per virtual service and configuration generation
// (with that generation's Picker and real servers); the entries live in a
// Table held by a Registry keyed by VS ID, outside the configuration, so
// they survive reloads while their virtual service exists, and name real
// servers by backend.Key. A service that follows another (port following)
// uses the other's Table.
//
// The decorator is protocol neutral: the proxies fill an Input with what
// they know (client address; for HTTP the request; for ssl a TLS session
// identity; for udpsip the SIP message). Layer-4 proxies call Pick (a
// balance.Picker) once per connection; the layer-7 proxy calls
// Conn().Pick per request, which applies "always check persist", and
// OnResponse per response, which learns server cookies and returns the
// Set-Cookie of active cookies. See docs/persistence-and-scheduling.md.
//
// Failure semantics: a client stuck to a real server that is Down,
// disabled (and not draining), gone from the configuration, or that the
// request avoids (its dial just failed) is scheduled again and stuck to
// the new server. A draining server keeps its persisted clients (but gets
// no new ones, since pickers skip it). A stuck server at its connection
// limit is not used for this connection, which is scheduled elsewhere, but
// the client stays stuck to it.
package persist

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
)

// The persistence modes, by their LoadMaster names (API `Persist`).
const (
	ModeNone            = "none"
	ModeSrc             = "src"
	ModeSuper           = "super"
	ModeSuperSrc        = "super-src"
	ModeCookie          = "cookie"
	ModeCookieSrc       = "cookie-src"
	ModeActiveCookie    = "active-cookie"
	ModeActiveCookieSrc = "active-cook-src"
	ModeCookieHash      = "cookie-hash"
	ModeCookieHashSrc   = "cookie-hash-src"
	ModeURL             = "url"
	ModeQueryHash       = "query-hash"
	ModeHost            = "host"
	ModeHeader          = "header"
	ModeSSL             = "ssl"
	ModeUDPSIP          = "udpsip"
)

// keyKind says how a mode's own key is used.
type keyKind int

const (
	kindNone    keyKind = iota // no key of its own (src: the source key is the key)
	kindStored                 // looked up, and stored after scheduling
	kindLearned                // looked up; stored only from what servers send (cookie, ssl)
	kindToken                  // carried by the client in a signed cookie (active cookies)
)

// spec describes a mode.
type spec struct {
	kind      keyKind
	src       bool // the source address is a key (src) or the fallback (-src)
	needsHTTP bool
}

// Modes returns every persistence mode, sorted.
func Modes() []string {
	out := make([]string, 0, len(specs))
	for m := range specs {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// NeedsHTTP reports whether mode reads HTTP requests (and so needs a
// layer-7 service to do anything beyond its source-IP fallback).
func NeedsHTTP(mode string) bool { return specs[mode].needsHTTP }

// Always is "always check persist" (LoadMaster `alwayspersist`): when the
// layer-7 proxy consults persistence for the requests of one client
// connection.
type Always int

const (
	// AlwaysNo checks persistence on the first request of a connection;
	// later requests go to the same real server while it can take them.
	AlwaysNo Always = iota
	// AlwaysYes checks every request: each goes where its own key says, and
	// a request with an unknown key is scheduled afresh.
	AlwaysYes
	// AlwaysAcceptChanges checks every request, and a request whose key is
	// unknown (a client that just logged in and now sends Authorization, a
	// new cookie) is stuck to the server its connection already uses rather
	// than scheduled afresh: the change of key is accepted.
	AlwaysAcceptChanges
)

// Limits and defaults of Settings.
const (
	// MaxTimeout is the longest persistence timeout (28 days).
	MaxTimeout = 28 * 24 * time.Hour
	// DefaultTimeout is used when Settings.Timeout is 0.
	DefaultTimeout = 30 * time.Minute
	// DefaultActiveCookie is the cookie name of the active cookie modes.
	DefaultActiveCookie = "FULCRUM"
)

// Settings configure a Persister.
type Settings struct {
	// Mode is one of the Mode constants.
	Mode string
	// Timeout is how long an entry lives (after it was stored or, with
	// Refresh, last used); 0 means DefaultTimeout; at most MaxTimeout.
	Timeout time.Duration
	// Refresh restarts an entry's timeout every time it is used
	// (LoadMaster `RefreshPersist`).
	Refresh bool
	// Name is the cookie name of the cookie modes (required for cookie and
	// cookie-src; DefaultActiveCookie for the active ones when empty) or the
	// header name of mode header (required).
	Name string
	// QueryTag is the query item hashed by mode query-hash (required).
	QueryTag string
	// Mask is the prefix length applied to IPv4 client addresses by the
	// source-IP parts of the modes, 1-32; 0 means 32.
	Mask int
	// Mask6 is the prefix length applied to IPv6 client addresses, 1-128;
	// 0 means 128.
	Mask6 int
	// Always is "always check persist", used by Conn.
	Always Always
	// Secret is the per-install secret that signs active cookies; at least
	// MinSecretLen bytes; required by the active cookie modes.
	Secret []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}

// Input is what a proxy knows about a connection or request, for the
// persistence modes and for the Picker behind them.
type Input struct {
	// Request is what the scheduling method sees: the client address (also
	// the key of the source-IP modes), SNI, hash key, servers to avoid.
	Request balance.Request
	// HTTP is the request, for the HTTP modes (super, cookies, url,
	// query-hash, host, header); nil outside HTTP. Only its Host, URL,
	// Header (and cookies in it) and TLS fields are read.
	HTTP *http.Request
	// TLSSession is a TLS session identity that the client presents again
	// when it resumes: for TLS ≤ 1.2, the session ID of the ClientHello
	// (see ParseHello). Mode ssl looks it up; LearnTLSSession stores it.
	TLSSession []byte
	// SIP is the SIP message (the datagram, or the first message of a TCP
	// connection) for mode udpsip, which keys on its Call-ID.
	SIP []byte
}

// Persister is the persistence decorator of one virtual service for one
// configuration generation. It is a balance.Picker. Its methods are safe
// for concurrent use.
type Persister struct {
	inner   balance.Picker
	reserve func(*backend.Server) (func(balance.Outcome), bool)
	table   *Table
	set     Settings
	spec    spec
	ttl     time.Duration
	refresh time.Duration // ttl with Refresh, else 0

	servers []*backend.Server
	ids     []uint32 // per server: its number in the table
	byPtr   map[*backend.Server]int32
	byKey   map[backend.Key]int32
	byAddr  map[string]int32 // first server with each address

	signer *signer
	sids   []serverID
	bySID  map[serverID]int32
	byHost map[[serverIDLen / 2]byte]int32

	localMu sync.Mutex
	local   atomic.Pointer[[]int32] // table server number → index in servers, -1
}

// New returns a Persister of s.Mode over inner, which was built over
// servers, keeping its entries in table. It checks s and returns an error
// naming the field at fault.
func New(inner balance.Picker, servers []*backend.Server, table *Table, s Settings) (*Persister, error) {
	if s.Mode == "" {
		s.Mode = ModeNone
	}
	sp, ok := specs[s.Mode]
	if !ok {
		return nil, fmt.Errorf("unknown persistence mode %q", s.Mode)
	}
	if inner == nil {
		return nil, errors.New("persist: no picker")
	}
	if table == nil && s.Mode != ModeNone {
		return nil, errors.New("persist: no table")
	}
	switch {
	case s.Timeout < 0 || s.Timeout > MaxTimeout:
		return nil, fmt.Errorf("persistence timeout must be 0-28 days, got %s", s.Timeout)
	case s.Timeout == 0:
		s.Timeout = DefaultTimeout
	}
	if s.Mask < 0 || s.Mask > 32 {
		return nil, fmt.Errorf("persistence mask must be 0-32, got %d", s.Mask)
	}
	if s.Mask6 < 0 || s.Mask6 > 128 {
		return nil, fmt.Errorf("persistence IPv6 mask must be 0-128, got %d", s.Mask6)
	}
	switch s.Mode {
	case ModeCookie, ModeCookieSrc:
		if s.Name == "" {
			return nil, fmt.Errorf("persistence mode %s needs a cookie name", s.Mode)
		}
	case ModeActiveCookie, ModeActiveCookieSrc:
		if s.Name == "" {
			s.Name = DefaultActiveCookie
		}
	case ModeHeader:
		if !isToken(s.Name) {
			return nil, fmt.Errorf("persistence mode header needs a valid header name, got %q", s.Name)
		}
	case ModeQueryHash:
		if s.QueryTag == "" {
			return nil, errors.New("persistence mode query-hash needs a query tag")
		}
	}
	if (s.Mode == ModeCookie || s.Mode == ModeCookieSrc || sp.kind == kindToken) && !isToken(s.Name) {
		return nil, fmt.Errorf("persistence cookie name %q is not a valid cookie name", s.Name)
	}
	if s.Now == nil {
		s.Now = time.Now
	}
	p := &Persister{
		inner: inner, table: table, set: s, spec: sp, ttl: s.Timeout,
		servers: servers,
		ids:     make([]uint32, len(servers)),
		byPtr:   make(map[*backend.Server]int32, len(servers)),
		byKey:   make(map[backend.Key]int32, len(servers)),
		byAddr:  make(map[string]int32, len(servers)),
	}
	if s.Refresh {
		p.refresh = s.Timeout
	}
	if r, ok := inner.(balance.Reserver); ok {
		p.reserve = r.Reserve
	} else {
		p.reserve = func(srv *backend.Server) (func(balance.Outcome), bool) {
			if srv.Acquire(int64(srv.Limit())) {
				return balance.Release(srv), true
			}
			return nil, false
		}
	}
	for i, srv := range servers {
		k := srv.Key()
		p.byPtr[srv] = int32(i)
		p.byKey[k] = int32(i)
		if _, dup := p.byAddr[k.Address]; !dup {
			p.byAddr[k.Address] = int32(i)
		}
		if table != nil {
			p.ids[i] = table.ServerID(k)
		}
	}
	if sp.kind == kindToken {
		sg, err := newSigner(s.Secret, table.ID())
		if err != nil {
			return nil, err
		}
		p.signer = sg
		p.sids = make([]serverID, len(servers))
		p.bySID = make(map[serverID]int32, len(servers))
		p.byHost = make(map[[serverIDLen / 2]byte]int32, len(servers))
		for i, srv := range servers {
			k := srv.Key()
			id := sg.serverID(k.Address, k.Port)
			p.sids[i] = id
			p.bySID[id] = int32(i)
			if _, dup := p.byHost[id.hostPart()]; !dup {
				p.byHost[id.hostPart()] = int32(i)
			}
		}
	}
	return p, nil
}

// Settings returns the settings in force (with defaults filled in).
func (p *Persister) Settings() Settings { return p.set }

// Table returns the table the Persister keeps its entries in.
func (p *Persister) Table() *Table { return p.table }

// Close closes the Picker behind the Persister, if it has background work.
func (p *Persister) Close() error {
	if c, ok := p.inner.(io.Closer); ok {
		return c.Close()
	}
	return nil
}

// Reserve implements balance.Reserver through the Picker it wraps, so
// that a proxy holding a client to a server it chose earlier (layer 7
// scheduling per connection) reserves and reports as a pick does.
func (p *Persister) Reserve(srv *backend.Server) (func(balance.Outcome), bool) {
	return p.reserve(srv)
}

// Pick implements balance.Picker for proxies that only know the request
// of the scheduling method (a layer-4 TCP connection): the source-IP modes
// work, the others schedule.
func (p *Persister) Pick(req *balance.Request) (*backend.Server, func(balance.Outcome), error) {
	in := Input{Request: *req}
	return p.choose(&in, nil)
}

// PickInput chooses a real server for in: the one in is persisted to if it
// can take it, or else the Picker's choice, which is then persisted. The
// caller must call done exactly once when the connection or request ends,
// with its outcome (see balance.Picker).
// Layer-4 proxies call it once per connection.
func (p *Persister) PickInput(in *Input) (srv *backend.Server, done func(balance.Outcome), err error) {
	return p.choose(in, nil)
}

// outcome is the result of trying a persisted server.
type outcome int

const (
	miss outcome = iota // no entry
	hit                 // the persisted server took the connection
	full                // the persisted server is at its limit: schedule, keep the entry
	gone                // the persisted server is Down, disabled, removed or avoided: re-stick
)

// choose is PickInput; c is the connection of accept-changes, else nil.
func (p *Persister) choose(in *Input, c *Conn) (*backend.Server, func(balance.Outcome), error) {
	if p.set.Mode == ModeNone {
		return p.inner.Pick(&in.Request)
	}
	now := p.set.Now()
	var store [2]uint64
	ns := 0

	if p.signer != nil {
		if i, ok := p.fromToken(in, now); ok {
			switch done, o := p.stick(i, in); o {
			case hit:
				return p.servers[i], done, nil
			case full:
				return p.inner.Pick(&in.Request)
			}
		}
	}

	primary, hasPrimary := p.primaryKey(in)
	storePrimary := false
	if hasPrimary {
		srv, done, o := p.lookup(primary, in, now)
		switch o {
		case hit:
			return srv, done, nil
		case full:
			return p.inner.Pick(&in.Request)
		case gone:
			storePrimary = true // re-stick
		case miss:
			storePrimary = p.spec.kind == kindStored
			if c != nil && c.p.set.Always == AlwaysAcceptChanges && c.srv != nil {
				if i, ok := p.byPtr[c.srv]; ok {
					if done, o := p.stick(i, in); o == hit {
						p.table.Store(primary, p.ids[i], now, p.ttl)
						return c.srv, done, nil
					}
				}
			}
		}
		if storePrimary {
			store[ns], ns = primary, ns+1
		}
	}

	// The source address: the key of src, the fallback of the -src modes
	// (consulted when the mode's own key is absent or unknown; a hit also
	// stores the new key for the same server, so a client whose cookies
	// appear stays where it is).
	if p.spec.src {
		if k, ok := p.srcKey(in); ok {
			srv, done, o := p.lookup(k, in, now)
			switch o {
			case hit:
				if storePrimary {
					p.table.Store(primary, p.ids[p.byPtr[srv]], now, p.ttl)
				}
				return srv, done, nil
			case full:
				return p.inner.Pick(&in.Request)
			}
			store[ns], ns = k, ns+1
		}
	}

	srv, done, err := p.inner.Pick(&in.Request)
	if err != nil || ns == 0 {
		return srv, done, err
	}
	if i, ok := p.byPtr[srv]; ok {
		for _, k := range store[:ns] {
			p.table.Store(k, p.ids[i], now, p.ttl)
		}
	}
	return srv, done, nil
}

// lookup tries the server persisted under key k.
func (p *Persister) lookup(k uint64, in *Input, now time.Time) (*backend.Server, func(balance.Outcome), outcome) {
	id, ok := p.table.Lookup(k, now, p.refresh)
	if !ok {
		return nil, nil, miss
	}
	i := p.resolve(id)
	if i < 0 {
		return nil, nil, gone // no longer in this service
	}
	done, o := p.stick(i, in)
	if o != hit {
		return nil, nil, o
	}
	return p.servers[i], done, hit
}

// stick tries to reserve a slot on server i for a persisted client.
func (p *Persister) stick(i int32, in *Input) (func(balance.Outcome), outcome) {
	s := p.servers[i]
	if !p.alive(s) || (len(in.Request.Avoid) > 0 && slices.Contains(in.Request.Avoid, s)) {
		return nil, gone
	}
	done, ok := p.reserve(s)
	if !ok {
		return nil, full
	}
	return done, hit
}

// alive reports whether s may keep its persisted clients: not Down, and
// enabled or draining.
func (p *Persister) alive(s *backend.Server) bool {
	return s.Health() != backend.HealthDown && (s.Settings().Enabled || s.Draining())
}

// resolve returns the index in p.servers of the server the table numbers
// id: the same real server (backend.Key), or, for an entry made by a
// service this one follows or is followed by, the first server with the
// same address. It returns -1 if there is none.
func (p *Persister) resolve(id uint32) int32 {
	if l := p.local.Load(); l != nil && int(id) < len(*l) {
		return (*l)[id]
	}
	p.localMu.Lock()
	defer p.localMu.Unlock()
	keys := p.table.rs.all()
	l := make([]int32, len(keys))
	for n, k := range keys {
		l[n] = -1
		if i, ok := p.byKey[k]; ok {
			l[n] = i
		} else if i, ok := p.byAddr[k.Address]; ok {
			l[n] = i
		}
	}
	p.local.Store(&l)
	if int(id) < len(l) {
		return l[id]
	}
	return -1
}

// fromToken returns the server named by a valid active cookie in in.
func (p *Persister) fromToken(in *Input, now time.Time) (int32, bool) {
	tok := requestCookie(in, p.set.Name)
	if tok == "" {
		return 0, false
	}
	id, _, err := p.signer.verify(tok, now)
	if err != nil {
		return 0, false
	}
	return p.tokenServer(id)
}

// tokenServer returns the index of the server an active cookie names: the
// same real server, or (port following) the first with the same address.
func (p *Persister) tokenServer(id serverID) (int32, bool) {
	if i, ok := p.bySID[id]; ok {
		return i, true
	}
	i, ok := p.byHost[id.hostPart()]
	return i, ok
}

// OnResponse is called by the layer-7 proxy with each response header h
// that srv sent for the request in. For the server cookie modes it learns
// the cookie (a Set-Cookie of the configured name stores its value for
// srv; one that deletes the cookie forgets the client's current value).
// For the active cookie modes it returns the Set-Cookie header value the
// proxy must add to the response (a signed token naming srv) when the
// request did not carry a valid one for srv, or, with Refresh, when the
// one it carried is past half its life; otherwise "". Other modes return
// "".
func (p *Persister) OnResponse(in *Input, srv *backend.Server, h http.Header) string {
	i, ok := p.byPtr[srv]
	if !ok {
		return ""
	}
	now := p.set.Now()
	switch {
	case p.spec.kind == kindLearned && p.set.Mode != ModeSSL:
		for _, line := range h.Values("Set-Cookie") {
			c, err := http.ParseSetCookie(line)
			if err != nil || c.Name != p.set.Name {
				continue
			}
			if c.Value == "" || c.MaxAge < 0 || (!c.Expires.IsZero() && !c.Expires.After(now)) {
				if old := requestCookie(in, p.set.Name); old != "" {
					p.table.Delete(p.stringKey(tagCookie, "", old))
				}
				continue
			}
			p.table.Store(p.stringKey(tagCookie, "", c.Value), p.ids[i], now, p.ttl)
		}
	case p.signer != nil:
		if tok := requestCookie(in, p.set.Name); tok != "" {
			if id, exp, err := p.signer.verify(tok, now); err == nil {
				same := id == p.sids[i] || id.hostPart() == p.sids[i].hostPart()
				if same && (!p.set.Refresh || exp.Sub(now) > p.ttl/2) {
					return ""
				}
				// The client is stuck to another server that only had no
				// room for this request: it stays stuck there.
				if j, ok := p.tokenServer(id); !same && ok && p.alive(p.servers[j]) {
					return ""
				}
			}
		}
		c := http.Cookie{
			Name:     p.set.Name,
			Value:    p.signer.issue(p.sids[i], now.Add(p.ttl)),
			Path:     "/",
			HttpOnly: true,
			Secure:   in.HTTP != nil && in.HTTP.TLS != nil,
			SameSite: http.SameSiteLaxMode,
		}
		return c.String()
	}
	return ""
}

// LearnTLSSession records, for mode ssl, that the TLS session id belongs
// to srv. A layer-4 proxy calls it with the session ID of a ServerHello
// that does not select TLS 1.3 (see ParseHello); a layer-7 proxy that has
// its own stable session identity may call it too. Other modes ignore it.
func (p *Persister) LearnTLSSession(id []byte, srv *backend.Server) {
	if p.set.Mode != ModeSSL || len(id) == 0 {
		return
	}
	if i, ok := p.byPtr[srv]; ok {
		p.table.Store(p.bytesKey(tagTLS, id), p.ids[i], p.set.Now(), p.ttl)
	}
}

// Conn is the persistence state of one client connection of the layer-7
// proxy, which calls its Pick for every request on the connection; it
// applies Settings.Always. A Conn is used by one goroutine at a time.
type Conn struct {
	p   *Persister
	srv *backend.Server
}

// Conn returns the state of a new client connection.
func (p *Persister) Conn() *Conn { return &Conn{p: p} }

// Pick chooses the real server of one request on the connection, like
// PickInput, after "always check persist": with AlwaysNo, requests after
// the first go to the connection's server while it can take them.
func (c *Conn) Pick(in *Input) (*backend.Server, func(balance.Outcome), error) {
	if c.p.set.Always == AlwaysNo && c.srv != nil {
		if i, ok := c.p.byPtr[c.srv]; ok {
			if done, o := c.p.stick(i, in); o == hit {
				return c.srv, done, nil
			}
		}
	}
	srv, done, err := c.p.choose(in, c)
	if err == nil {
		c.srv = srv
	}
	return srv, done, err
}

// Server returns the real server of the connection's last request, or nil.
func (c *Conn) Server() *backend.Server { return c.srv }

// requestCookie returns the value of the request's cookie name, or "".
func requestCookie(in *Input, name string) string {
	if in.HTTP == nil {
		return ""
	}
	c, err := in.HTTP.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// isToken reports whether name is an HTTP token (RFC 9110), as cookie and
// header names must be.
func isToken(name string) bool {
	if name == "" {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9':
		case c < 0x80 && strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0:
		default:
			return false
		}
	}
	return true
}

// maskAddr returns the client address with the configured prefix applied.
func (p *Persister) maskAddr(a netip.Addr) netip.Addr {
	a = a.Unmap()
	bits := p.set.Mask
	if a.Is6() {
		bits = p.set.Mask6
	}
	if bits == 0 {
		return a
	}
	pfx, err := a.Prefix(bits)
	if err != nil {
		return a
	}
	return pfx.Addr()
}
