package l7

//lint:file-ignore SA1019 x/net/http2's Server.ServeConn is deprecated in favour of net/http's built-in HTTP/2, which cannot serve a connection accepted elsewhere and already read through the h2guard; it is still maintained and is what lets the proxy own its connections.

import (
	"crypto/tls"
	"io"
	"log"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
	"github.com/fulcrum-lb/fulcrum/internal/l7/rules"
)

// h2conn is one HTTP/2 client connection.
type h2conn struct {
	svc       *Service
	tc        *tls.Conn
	g         *h2guard
	mark      *connMark // idle while no stream runs (see makeRoom); nil in tests
	client    netip.AddrPort
	clientIP  []byte
	sni       string
	abandoned atomic.Int64 // streams the client cancelled before their end
	completed atomic.Int64

	// The idle timeout (see checkIdle).
	active atomic.Int32 // handlers running
	last   atomic.Int64 // when a stream last started or ended, since h2epoch
	timer  *time.Timer  // runs checkIdle; guarded by g.smu
	done   bool         // the connection ended; guarded by g.smu
}

// h2epoch is the origin of h2conn.last.
var h2epoch = time.Now()

// touch records activity: a stream started or ended.
func (hc *h2conn) touch() { hc.last.Store(int64(time.Since(h2epoch))) }

// drainTime is how long a connection going away for idleness still reads
// (and drops) what its client sends, so that the GOAWAY is not lost to a
// reset.
const drainTime = time.Second

// checkIdle ends a connection that has had no stream running for the idle
// timeout: GOAWAY (NO_ERROR) naming the last stream x/net saw, so that the
// client knows a request it sent meanwhile was not processed, then the
// connection ends after drainTime. Deciding and stopping new streams
// happen under the guard's stream lock, so no stream slips in between.
func (hc *h2conn) checkIdle() {
	g := hc.g
	g.smu.Lock()
	if hc.done || g.draining.Load() {
		g.smu.Unlock()
		return
	}
	idle := hc.svc.st.Load().cfg.IdleTimeout // a reload may have changed it
	if hc.active.Load() > 0 {
		hc.timer.Reset(idle)
		g.smu.Unlock()
		return
	}
	if since := time.Since(h2epoch) - time.Duration(hc.last.Load()); since < idle {
		hc.timer.Reset(idle - since)
		g.smu.Unlock()
		return
	}
	last := g.stopStreams()
	g.smu.Unlock()
	g.writeGoAway(last, http2.ErrCodeNo, "idle timeout")
	_ = hc.tc.SetReadDeadline(time.Now().Add(drainTime))
}

// calm closes a connection a handler found abusive, after a GOAWAY
// ENHANCE_YOUR_CALM.
func (hc *h2conn) calm(reason string) {
	hc.g.calm(reason)
	_ = hc.tc.Close()
}

var discardLog = log.New(io.Discard, "", 0)

// tlsStateMarker marks a request as received over TLS for persistence.
var tlsStateMarker tls.ConnectionState

// serveH2 serves an HTTP/2 connection until it ends. x/net's own idle
// timer is off (see h2guard); the connection's is stopped when it ends, so
// nothing refers to it afterwards.
func (s *Service) serveH2(tc *tls.Conn, client netip.AddrPort, sni string, m *connMark) {
	st := s.st.Load()
	hc := &h2conn{svc: s, tc: tc, client: client, clientIP: client.Addr().AppendTo(nil), sni: sni, mark: m}
	if m != nil {
		m.h2.Store(hc)
		m.setIdle(time.Now())
	}
	g := newH2Guard(tc, st.cfg.MaxHeaderBytes)
	g.hc, hc.g = hc, g
	hc.touch()
	g.smu.Lock()
	hc.timer = time.AfterFunc(st.cfg.IdleTimeout, hc.checkIdle)
	g.smu.Unlock()
	st.h2.ServeConn(g, &http2.ServeConnOpts{
		Context: s.proxy.ctx,
		BaseConfig: &http.Server{
			MaxHeaderBytes:    st.cfg.MaxHeaderBytes,
			ReadHeaderTimeout: st.cfg.HeaderTimeout,
			ErrorLog:          discardLog,
		},
		Handler: hc,
	})
	g.smu.Lock()
	hc.done = true
	hc.timer.Stop()
	g.smu.Unlock()
	_ = tc.Close()
}

// h2req is one HTTP/2 request as rules and persistence see it, and the
// protocol's side of its exchange.
type h2req struct {
	r           *http.Request
	hc          *h2conn
	target      []byte
	path, query []byte
	host        []byte
	body        []byte
	flags       rules.Flags

	// the exchange
	w       http.ResponseWriter
	hasBody bool
	wrote   bool      // the final response head was written
	sentAt  time.Time // when the request head of the current attempt went out
	headAt  time.Time // when the head of its response came in
	resp    int       // the status of the response relayed

	// counting (count.go): the client's bytes by the HTTP/2 rule (header
	// fields as name + value + 4 each, DATA payload)
	cnt   reqCount
	bytes byteMeter
	entry *accesslog.Entry // from entries while the service logs; nil otherwise
}

// entries are the access log entries of HTTP/2 streams, reused.
var entries = sync.Pool{New: func() any { return new(accesslog.Entry) }}

// Path implements rules.Request.
func (q *h2req) Path() []byte { return q.path }

// Target implements rules.Request.
func (q *h2req) Target() []byte { return q.target }

// Query implements rules.Request.
func (q *h2req) Query() []byte { return q.query }

// Host implements rules.Request.
func (q *h2req) Host() []byte { return q.host }

// Body implements rules.Request.
func (q *h2req) Body() []byte { return q.body }

// Header implements rules.Request.
func (q *h2req) Header(name string) []byte {
	if equalFoldString(name, "host") {
		return []byte(q.r.Host)
	}
	if v := q.r.Header.Get(name); v != "" {
		return []byte(v)
	}
	return nil
}

// Cookie implements RequestInfo.
func (q *h2req) Cookie(name string) []byte {
	if c, err := q.r.Cookie(name); err == nil {
		return []byte(c.Value)
	}
	return nil
}

// Client implements RequestInfo.
func (q *h2req) Client() netip.AddrPort { return q.hc.client }

// IsTLS implements RequestInfo: HTTP/2 is only served over TLS.
func (q *h2req) IsTLS() bool { return true }

// VisitFields implements Fields; Host is included.
func (q *h2req) VisitFields(fn func(name, value []byte)) {
	fn([]byte("Host"), []byte(q.r.Host))
	visitHeader(q.r.Header, fn)
}

// headerFields is an http.Header as Fields.
type headerFields http.Header

// VisitFields implements Fields.
func (h headerFields) VisitFields(fn func(name, value []byte)) { visitHeader(http.Header(h), fn) }

func visitHeader(h http.Header, fn func(name, value []byte)) {
	for k, vs := range h {
		for _, v := range vs {
			fn([]byte(k), []byte(v))
		}
	}
}

// h2Editor applies header and URL rules to an HTTP/2 request or response.
type h2Editor struct {
	h      http.Header
	target *[]byte // nil for responses
}

// AddHeader implements rules.Editor.
func (e h2Editor) AddHeader(name, value []byte) { e.h.Add(string(name), string(value)) }

// DelHeader implements rules.Editor.
func (e h2Editor) DelHeader(name string) { e.h.Del(name) }

// EditHeader implements rules.Editor.
func (e h2Editor) EditHeader(name string, fn func([]byte) ([]byte, bool)) {
	vs := e.h.Values(name)
	for i, v := range vs {
		if nv, ok := fn([]byte(v)); ok {
			vs[i] = string(nv)
		}
	}
}

// URL implements rules.Editor.
func (e h2Editor) URL() []byte {
	if e.target != nil {
		return *e.target
	}
	if l := e.h.Get("Location"); l != "" {
		return []byte(l)
	}
	return nil
}

// SetURL implements rules.Editor.
func (e h2Editor) SetURL(u []byte) {
	if e.target != nil {
		if len(u) > 0 && u[0] == '/' {
			*e.target = u
		}
		return
	}
	e.h.Set("Location", string(u))
}

// hopHeaders are removed from HTTP/2 requests and responses in addition to
// those named in Connection (HTTP/2 forbids most of them anyway).
var hopHeaders = []string{"Connection", "Proxy-Connection", "Keep-Alive", "Proxy-Authenticate",
	"Proxy-Authorization", "Te", "Transfer-Encoding", "Upgrade", "Http2-Settings", "Host", "Content-Length"}

// ServeHTTP proxies one HTTP/2 stream.
func (hc *h2conn) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if hc.active.Add(1) == 1 && hc.mark != nil {
		hc.mark.setBusy()
	}
	defer func() {
		hc.touch()
		if hc.active.Add(-1) == 0 && hc.mark != nil {
			hc.mark.setIdle(time.Now())
		}
	}()
	if r.Context().Err() != nil {
		// Reset by the client before it started (rapid reset): no work,
		// not even growing the goroutine's stack for serveStream's frame.
		hc.abandon()
		return
	}
	hc.serveStream(w, r)
}

// serveStream is ServeHTTP for a stream still open.
func (hc *h2conn) serveStream(w http.ResponseWriter, r *http.Request) {
	st := hc.svc.st.Load()
	cfg := &st.cfg
	q := &h2req{r: r, hc: hc, target: []byte(r.RequestURI)}
	q.begin(cfg)
	defer q.end(st)
	if !validH2Target(q.target) || len(q.target) > cfg.MaxURI || !validH2ContentLength(r.Header["Content-Length"]) {
		q.error(w, answer{status: 400})
		return
	}
	if cfg.RequestRate != nil && !cfg.RequestRate.Allow() {
		q.error(w, answer{status: 429})
		return
	}
	q.path, q.query = splitTarget(q.target)
	q.host = hostOnly([]byte(r.Host))
	for _, c := range r.Header.Values("Connection") {
		for _, tok := range strings.Split(c, ",") {
			r.Header.Del(strings.TrimSpace(tok))
		}
	}
	for _, h := range hopHeaders {
		r.Header.Del(h)
	}
	for _, rl := range cfg.PreRules {
		rl.Match(q, &q.flags)
	}
	pl := route(st, q, &q.flags)
	if pl == nil {
		q.cnt.ProxyError, q.cnt.term = true, "no-server"
		q.error(w, unavailable(nil, 503, []byte(r.Host), q.target))
		return
	}
	q.cnt.pool = pl
	e := h2Editor{h: r.Header, target: &q.target}
	for _, rl := range cfg.RequestRules {
		rl.Apply(e, q.flags)
	}
	for _, rl := range pl.RequestRules {
		rl.Apply(e, q.flags)
	}
	hc.exchange(st, pl, q, w)
	if r.Context().Err() != nil {
		hc.abandon()
		q.cnt.complete = false
		if q.cnt.term == "" {
			q.cnt.term = "client-abort"
		}
	} else {
		hc.completed.Add(1)
	}
}

// begin starts counting the stream's request: its header fields (with
// the pseudo-header fields) are what the client sent before it began.
func (q *h2req) begin(cfg *ServiceConfig) {
	r := q.r
	q.cnt.begin(time.Now())
	n := int64(len(":method")+len(r.Method)+len(":path")+len(r.RequestURI)+len(":scheme")+len("https")+
		len(":authority")+len(r.Host)) + 4*4
	n += headerBytes(r.Header)
	q.bytes.in += n
	if cfg.AccessLog != nil {
		q.entry = entries.Get().(*accesslog.Entry)
		*q.entry = accesslog.Entry{Method: r.Method, Host: r.Host, URI: r.RequestURI, Proto: "HTTP/2.0",
			UserAgent: r.Header.Get("User-Agent")}
	}
}

// headerBytes is the size of h by the HTTP/2 rule: name + value + 4 per
// field.
func headerBytes(h http.Header) int64 {
	var n int64
	for k, vs := range h {
		for _, v := range vs {
			n += int64(len(k) + len(v) + 4)
		}
	}
	return n
}

// headBytes is the size of a response head of status with the fields h.
func headBytes(h http.Header) int64 { return int64(len(":status")+3+4) + headerBytes(h) }

// end adds the stream's request to the counters and the access log; it
// runs (deferred) also when the handler aborts the stream by a panic.
func (q *h2req) end(st *state) {
	cfg := &st.cfg
	q.cnt.record(cfg, time.Now())
	in, out := q.bytes.in, q.bytes.out
	q.bytes.flushVS(cfg.Stats)
	if e := q.entry; e != nil {
		hc := q.hc
		logEntry(e, cfg, &q.cnt, hc.client, hc.tc.LocalAddr(), hc.sni, in, out)
		if cfg.AccessLog != nil {
			cfg.AccessLog.Log(e)
		}
		*e = accesslog.Entry{} // no request's strings kept alive
		entries.Put(e)
		q.entry = nil
	}
}

// error sends the answer a of Fulcrum's own, counted.
func (q *h2req) error(w http.ResponseWriter, a answer) {
	q.cnt.answered(a.status)
	n := h2Error(w, a)
	q.bytes.out += headBytes(w.Header()) + int64(n)
	q.cnt.complete = true
}

// abandon counts a stream the client cancelled; a connection that cancels
// more than rapidResetLimit streams, and more than it completes, is closed
// (rapid reset, CVE-2023-44487).
func (hc *h2conn) abandon() {
	if hc.abandoned.Add(1) > rapidResetLimit && hc.abandoned.Load() > hc.completed.Load() {
		hc.calm("rapid reset")
	}
}

// validH2ContentLength reports whether the content-length fields of a
// request, if any, are one valid length, possibly repeated: two different
// values make the request malformed (RFC 9113 §8.1.1), and x/net would
// take the first.
func validH2ContentLength(vs []string) bool {
	for i, v := range vs {
		if v == "" || len(v) > 18 || (i > 0 && v != vs[0]) {
			return false
		}
		for j := 0; j < len(v); j++ {
			if v[j] < '0' || v[j] > '9' {
				return false
			}
		}
	}
	return true
}

func validH2Target(t []byte) bool {
	if len(t) == 0 || t[0] != '/' {
		return false
	}
	for _, c := range t {
		if c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
	}
	return true
}

// h2Error sends the answer a and returns the length of its body.
func h2Error(w http.ResponseWriter, a answer) int {
	h := w.Header()
	if a.location != "" {
		h.Set("Location", a.location)
	}
	body := a.body
	if body == nil {
		h.Set("Content-Type", "text/plain; charset=utf-8")
		body = []byte(http.StatusText(a.status) + "\n")
	} else {
		h.Set("Content-Type", "text/html; charset=utf-8")
	}
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(a.status)
	n, _ := w.Write(body)
	return n
}
