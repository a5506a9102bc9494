package l7

//lint:file-ignore SA1019 x/net/http2's Server.ServeConn is deprecated in favour of net/http's built-in HTTP/2, which cannot serve a connection accepted elsewhere and already read through the h2guard; it is still maintained and is what lets the proxy own its connections.

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"io"
	"log"
	"net/http"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/l7/h1"
	"github.com/fulcrum-lb/fulcrum/internal/l7/rules"
)

// h2conn is one HTTP/2 client connection.
type h2conn struct {
	svc       *Service
	tc        *tls.Conn
	g         *h2guard
	mark      *connMark // idle while no stream runs (see makeRoom); nil in tests
	client    netip.AddrPort
	clientIP  string
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
	hc := &h2conn{svc: s, tc: tc, client: client, clientIP: client.Addr().String(), sni: sni, mark: m}
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

// h2req is one HTTP/2 request as rules and persistence see it.
type h2req struct {
	r           *http.Request
	hc          *h2conn
	target      []byte
	path, query []byte
	host        []byte
	body        []byte
	flags       rules.Flags
}

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
	if !validH2Target(q.target) || len(q.target) > cfg.MaxURI || !validH2ContentLength(r.Header["Content-Length"]) {
		h2Error(w, answer{status: 400})
		return
	}
	if cfg.RequestRate != nil && !cfg.RequestRate.Allow() {
		h2Error(w, answer{status: 429})
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
	pl := cfg.Pool
	if pl == nil {
		var def *Pool
		for i := range cfg.SubVSs {
			sv := &cfg.SubVSs[i]
			if len(sv.Select) == 0 {
				if def == nil {
					def = sv.Pool
				}
			} else if rules.MatchAny(sv.Select, q, &q.flags) {
				pl = sv.Pool
				break
			}
		}
		if pl == nil {
			pl = def
		}
	}
	if pl == nil {
		h2Error(w, unavailable(nil, 503, []byte(r.Host), q.target))
		return
	}
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
	} else {
		hc.completed.Add(1)
	}
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

func h2Error(w http.ResponseWriter, a answer) {
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
	_, _ = w.Write(body)
}

// exchange sends an HTTP/2 request to a real server of pl over HTTP/1.1,
// with retries, and relays the response.
func (hc *h2conn) exchange(st *state, pl *Pool, q *h2req, w http.ResponseWriter) {
	cfg := &st.cfg
	r := q.r
	up := st.pools[pl]
	hasBody := r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	replayable := !hasBody && (r.Method == "GET" || r.Method == "HEAD" || r.Method == "OPTIONS" || r.Method == "TRACE")
	deadline := time.Now().Add(cfg.RetryTimeout)
	breq := balance.Request{Client: hc.client, SNI: hc.sni}
	if pl.HashURL {
		breq.HashKey = string(q.path)
	}
	tries := 0
	for {
		var srv *backend.Server
		var release func()
		var err error
		if pl.Persist != nil {
			srv, release, err = pl.Persist.Choose(pl.Picker, &breq, q)
		} else {
			srv, release, err = pl.Picker.Pick(&breq)
		}
		if err != nil {
			if pl.Sorry == nil || containsServer(breq.Avoid, pl.Sorry) {
				status := 503
				if len(breq.Avoid) > 0 {
					status = 502
				}
				h2Error(w, unavailable(pl, status, []byte(r.Host), q.target))
				return
			}
			srv = pl.Sorry
			srv.Acquire(0)
			release = srv.ReleaseFunc()
		}
		sni := ""
		if pl.PassSNI {
			sni = hc.sni
		}
		u := up.get(srv, sni, !replayable)
		reused := u != nil
		if u == nil {
			u, err = up.dial(r.Context(), srv, sni)
			if err != nil {
				release()
				if r.Context().Err() != nil {
					return // the client cancelled the stream: not the server's failure
				}
				srv.AddFailure()
				breq.Avoid = append(breq.Avoid, srv)
				tries++
				if tries <= cfg.Retries && time.Now().Before(deadline) && r.Context().Err() == nil {
					continue
				}
				h2Error(w, unavailable(pl, 502, nil, nil))
				return
			}
		}
		res := hc.roundTrip(st, pl, up, u, srv, q, w, hasBody)
		release()
		if res == failedClient {
			// The response broke off after its head: reset the stream so
			// that the client cannot take a truncated body as complete.
			panic(http.ErrAbortHandler)
		}
		if res == timedOut {
			// No response head within ResponseTimeout, or the body not
			// taken within BodyTimeout: the server's failure, kept
			// connection or not. A replayable request is tried elsewhere.
			srv.AddFailure()
			breq.Avoid = append(breq.Avoid, srv)
			tries++
			if replayable && tries <= cfg.Retries && time.Now().Before(deadline) && r.Context().Err() == nil {
				continue
			}
			h2Error(w, unavailable(pl, 504, nil, nil))
			return
		}
		if res != retry {
			return
		}
		if !reused {
			srv.AddFailure()
			breq.Avoid = append(breq.Avoid, srv)
			tries++
		}
		if !(tries <= cfg.Retries && time.Now().Before(deadline) && r.Context().Err() == nil) {
			h2Error(w, unavailable(pl, 502, nil, nil))
			return
		}
	}
}

// roundTrip writes the request on u and relays the response to w.
func (hc *h2conn) roundTrip(st *state, pl *Pool, up *upstreamPool, u *upConn, srv *backend.Server, q *h2req, w http.ResponseWriter, hasBody bool) outcome {
	cfg := &st.cfg
	r := q.r
	// The head goes out and the response head must come within the
	// response timeout; a body is sent under the body timeouts (h2Body).
	_ = u.c.SetDeadline(time.Now().Add(cfg.ResponseTimeout))
	// A stream the client cancels unblocks what waits on the real server.
	stop := context.AfterFunc(r.Context(), func() { _ = u.c.SetDeadline(time.Unix(1, 0)) })
	defer stop()
	bw := u.bw
	_, _ = bw.WriteString(r.Method)
	_ = bw.WriteByte(' ')
	_, _ = bw.Write(q.target)
	_, _ = bw.WriteString(" HTTP/1.1\r\nHost: ")
	if pl.HostRewrite != "" {
		_, _ = bw.WriteString(pl.HostRewrite)
	} else {
		_, _ = bw.WriteString(r.Host)
	}
	_, _ = bw.WriteString("\r\n")
	trust := len(cfg.TrustedProxies) > 0 && trusted(cfg.TrustedProxies, hc.client.Addr())
	mode := cfg.AddVia
	xff := addsXFF(mode)
	var prior []string
	for name, vs := range r.Header {
		switch _, act := forwardingAction(name, trust, mode); act {
		case fwdDrop:
			continue // includes the underscore spellings (X_Forwarded_For)
		case fwdMerge:
			prior = vs
			continue
		}
		for _, v := range vs {
			if !h1.ValidValue([]byte(v)) {
				continue
			}
			_, _ = bw.WriteString(name)
			_, _ = bw.WriteString(": ")
			_, _ = bw.WriteString(v)
			_, _ = bw.WriteString("\r\n")
		}
	}
	if xff {
		_, _ = bw.WriteString("X-Forwarded-For: ")
		for _, v := range prior {
			_, _ = bw.WriteString(v)
			_, _ = bw.WriteString(", ")
		}
		_, _ = bw.WriteString(hc.clientIP)
		_, _ = bw.WriteString("\r\n")
		if !trust || r.Header.Get("X-Forwarded-Proto") == "" {
			_, _ = bw.WriteString("X-Forwarded-Proto: https\r\n")
		}
	}
	if addsClientSide(mode) {
		_, _ = bw.WriteString("X-ClientSide: " + hc.clientIP + "\r\n")
	}
	if addsVia(mode) {
		_, _ = bw.WriteString("Via: 2.0 fulcrum\r\n")
	}
	if hasBody {
		if r.ContentLength > 0 {
			writeContentLength(bw, r.ContentLength)
		} else {
			_, _ = bw.WriteString("Transfer-Encoding: chunked\r\n")
		}
	} else if r.Method == "POST" || r.Method == "PUT" || r.Method == "PATCH" {
		_, _ = bw.WriteString("Content-Length: 0\r\n")
	}
	_, _ = bw.WriteString("\r\n")
	if hasBody {
		b := h2Body{r: r.Body, rc: http.NewResponseController(w), u: u, cfg: cfg}
		var err error
		if r.ContentLength > 0 {
			_, err = io.Copy(bw, io.LimitReader(&b, r.ContentLength))
		} else {
			_, err = io.Copy(h1.ChunkWriter{W: bw}, &b)
			if err == nil {
				err = h1.WriteLastChunk(bw, nil)
			}
		}
		if err == nil {
			err = bw.Flush()
		}
		if err != nil {
			u.close()
			switch {
			case b.err != nil:
				return failedClient // the client stalled or went away
			case errors.Is(err, os.ErrDeadlineExceeded) && r.Context().Err() == nil:
				return timedOut // the real server took nothing for BodyTimeout
			}
			h2Error(w, answer{status: 502})
			return failed
		}
		_ = u.c.SetDeadline(time.Now().Add(cfg.ResponseTimeout))
	}
	if err := bw.Flush(); err != nil {
		u.close()
		return retryIf(!hasBody)
	}
	// Let the other ready goroutines run before reading the answer: it has
	// then often arrived, and the read neither fails with EAGAIN nor parks
	// this goroutine in the poller.
	runtime.Gosched()
	resp := getH2Head()
	defer putH2Head(resp)
	for {
		head, err := readHead(u.br, DefaultMaxHeaderBytes*2)
		if err != nil {
			u.close()
			if errors.Is(err, os.ErrDeadlineExceeded) && r.Context().Err() == nil {
				hc.svc.proxy.log.Debug("l7: response timeout", "pool", pl.Name, "server", srv.Addr(),
					"timeout", cfg.ResponseTimeout)
				return timedOut
			}
			if !hasBody && r.Context().Err() == nil {
				return retry
			}
			h2Error(w, answer{status: 502})
			return failed
		}
		err = resp.ParseResponse(head, 200)
		_, _ = u.br.Discard(len(head))
		if err != nil {
			u.close()
			h2Error(w, answer{status: 502})
			return failed
		}
		if resp.Status >= 200 {
			break
		}
		if resp.Status == 101 {
			u.close()
			h2Error(w, answer{status: 502})
			return failed
		}
		if resp.Status != 100 {
			h := w.Header()
			addFields(h, resp.Fields, false, -1)
			w.WriteHeader(resp.Status)
			clear(h)
		}
	}
	mode2 := bodyUntilClose
	clen := int64(-1) // the Content-Length to send, if any
	switch {
	case r.Method == "HEAD" || resp.Status == 204 || resp.Status == 304:
		mode2 = bodyNone
		if resp.ContentLength >= 0 && resp.Status != 204 {
			clen = resp.ContentLength
		}
	case resp.Chunked:
		mode2 = bodyChunked
	case resp.ContentLength >= 0:
		mode2 = bodyLength
		clen = resp.ContentLength
	}
	h := w.Header()
	edits := len(cfg.ResponseRules)+len(pl.ResponseRules) > 0 || pl.Persist != nil
	if !edits {
		addFields(h, resp.Fields, true, clen)
	} else {
		addFields(h, resp.Fields, true, -1)
	}
	if len(cfg.ResponseRules)+len(pl.ResponseRules) > 0 {
		e := h2Editor{h: h}
		for _, rl := range cfg.ResponseRules {
			rl.Apply(e, q.flags)
		}
		for _, rl := range pl.ResponseRules {
			rl.Apply(e, q.flags)
		}
	}
	if pl.Persist != nil {
		pl.Persist.Respond(srv, q, headerFields(h), func(name, value string) { h.Add(name, value) })
	}
	if edits && clen >= 0 {
		h.Set("Content-Length", strconv.FormatInt(clen, 10))
	}
	w.WriteHeader(resp.Status)
	// The real server's side of the body is bounded by BodyTimeout
	// without progress, the client's by the body clock (flushWriter).
	now := time.Now()
	_ = u.c.SetReadDeadline(now.Add(cfg.BodyTimeout))
	fw := &flushWriter{w: w, src: u.br, left: -1, u: u, cfg: cfg, last: now}
	switch mode2 {
	case bodyLength:
		fw.left = resp.ContentLength
	case bodyChunked:
		fw.slack = 2 // the CRLF that ends a chunk's data
	}
	var err error
	var n int64
	switch mode2 {
	case bodyLength:
		n, err = h1.CopyN(fw, u.br, resp.ContentLength)
	case bodyUntilClose:
		n, err = h1.CopyAll(fw, u.br)
	case bodyChunked:
		var cr h1.ChunkedReader
		cr.Reset(u.br, 8<<10)
		for {
			var b []byte
			b, err = cr.Next()
			if err == io.EOF {
				err = nil
				for _, f := range cr.Trailers {
					if !f.Hop {
						h.Add(http.TrailerPrefix+string(f.Name), string(f.Value))
					}
				}
				break
			}
			if err != nil {
				break
			}
			n += int64(len(b))
			if _, err = fw.Write(b); err != nil {
				break
			}
		}
	}
	srv.AddBytes(max(r.ContentLength, 0), n)
	if err != nil {
		u.close()
		return failedClient // the caller resets the stream
	}
	// A connection goes back to the pool only if the stream's cancel hook
	// can no longer run: once started it sets a past deadline on the
	// connection, which would fail the next request to use it.
	if !resp.Close && mode2 != bodyUntilClose && stop() {
		up.put(u)
	} else {
		u.close()
	}
	return done
}

// flushWriter flushes the HTTP/2 response whenever the real server has
// nothing more buffered, so that streamed bodies reach the client as they
// come. It does not flush once a body of known length is complete: the
// end of the handler sends the last bytes with END_STREAM, which saves a
// DATA frame and a hand-off to the connection's serve loop per response.
//
// It also holds the body's timeouts: at most once a second it extends the
// real server's read deadline by BodyTimeout and sets the stream's write
// deadline from the body clock (BodyTimeout and BodyMinRate, counting only
// the time spent writing to the client); a body that may outgrow the
// client's initial window gets its first deadline at once. Short answers
// cost no deadline at all.
type flushWriter struct {
	w    http.ResponseWriter
	src  *bufio.Reader
	left int64 // bytes of the body still to come; -1 when unknown
	// slack is how many buffered bytes still count as nothing more: a
	// chunk's data is returned before the CRLF that follows it is read.
	slack int

	u       *upConn
	cfg     *ServiceConfig
	clk     bodyClock
	last    time.Time // when the deadlines were last set
	sent    int64
	limited bool // the stream has a write deadline
}

// h2InitialWindow is HTTP/2's initial stream flow-control window: a body
// up to it never waits for the client to read.
const h2InitialWindow = 65535

// errTooSlow ends a body the client reads too slowly (BodyMinRate).
var errTooSlow = errors.New("l7: the client reads the response too slowly")

func (f *flushWriter) Write(b []byte) (int, error) {
	start := time.Now()
	if start.Sub(f.last) >= time.Second || !f.limited && f.sent+int64(len(b)) > h2InitialWindow {
		f.last = start
		_ = f.u.c.SetReadDeadline(start.Add(f.cfg.BodyTimeout))
		allow := f.clk.allow(f.cfg.BodyTimeout, f.cfg.BodyMinRate)
		if allow <= 0 {
			return 0, errTooSlow
		}
		_ = http.NewResponseController(f.w).SetWriteDeadline(start.Add(allow))
		f.limited = true
	}
	n, err := f.w.Write(b)
	if f.left >= 0 {
		f.left -= int64(n)
	}
	if err == nil && f.left != 0 && f.src.Buffered() <= f.slack {
		switch fl := f.w.(type) {
		case interface{ FlushError() error }:
			err = fl.FlushError()
		case http.Flusher:
			fl.Flush()
		}
	}
	f.sent += int64(n)
	f.clk.add(time.Since(start), n)
	return n, err
}

// h2Body is a request body read from an HTTP/2 client and sent to a real
// server, under the body timeouts: at most once a second the stream's
// read deadline is set from the body clock (BodyTimeout and BodyMinRate,
// counting only the time spent waiting for the client) and the real
// server's write deadline is extended by BodyTimeout. err is the last
// error of the client's side, so that a failure tells which side stalled.
type h2Body struct {
	r    io.Reader
	rc   *http.ResponseController
	u    *upConn
	cfg  *ServiceConfig
	clk  bodyClock
	last time.Time
	err  error
}

// errSlowUpload ends an upload the client sends too slowly (BodyMinRate).
var errSlowUpload = errors.New("l7: the client sends the request body too slowly")

func (b *h2Body) Read(p []byte) (int, error) {
	start := time.Now()
	if start.Sub(b.last) >= time.Second {
		b.last = start
		allow := b.clk.allow(b.cfg.BodyTimeout, b.cfg.BodyMinRate)
		if allow <= 0 {
			b.err = errSlowUpload
			return 0, b.err
		}
		_ = b.rc.SetReadDeadline(start.Add(allow))
		_ = b.u.c.SetWriteDeadline(start.Add(b.cfg.BodyTimeout))
	}
	n, err := b.r.Read(p)
	b.clk.add(time.Since(start), n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}
