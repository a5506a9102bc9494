package l7

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"sync"
	"syscall"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/l7/h1"
	"github.com/fulcrum-lb/fulcrum/internal/l7/rules"
)

// clientWriteBuf is the size of a client connection's write buffer.
const clientWriteBuf = 8 << 10

// preReadSize is how many bytes of a request a connection reads while it
// waits without a buffer: a request head up to this size arrives in one
// read.
const preReadSize = 1 << 10

// connState is what a client connection keeps between requests. It is
// small: an idle keep-alive connection holds no buffer and no parsed
// head, only this, its socket and a parked goroutine with a shallow stack.
type connState struct {
	svc      *Service
	mark     *connMark // idle while waiting for a request (see makeRoom); nil in tests
	c        net.Conn
	raw      *net.TCPConn
	client   netip.AddrPort
	clientIP []byte // client address as text; aliases ipBuf
	sni      string
	isTLS    bool

	// per connection scheduling
	pinned     *backend.Server
	pinnedPool *Pool

	pre    []byte // bytes read while idle, not yet taken by the reader; aliases preBuf
	ipBuf  [48]byte
	preBuf [preReadSize]byte

	// writing the end of a response in await (plain TCP only)
	rc     syscall.RawConn
	awaitF func(fd uintptr) bool
	held   *clientConn // its out.pending is written by await
	skip   bool        // after the write, wait for readiness without a read
	calls  int         // callback calls in the current await
	n      int         // bytes the callback read into preBuf
	err    error       // the callback's failed system call
	noSkip bool        // the client pipelines: never skip the read
}

func newConnState(s *Service, c net.Conn, raw *net.TCPConn, client netip.AddrPort, sni string, m *connMark) *connState {
	cs := &connState{svc: s, c: c, raw: raw, client: client, sni: sni, mark: m}
	cs.isTLS = raw == nil || c != net.Conn(raw)
	cs.clientIP = client.Addr().AppendTo(cs.ipBuf[:0])
	if !cs.isTLS {
		if rc, err := raw.SyscallConn(); err == nil {
			cs.rc = rc
			cs.awaitF = cs.awaitCallback
		}
	}
	return cs
}

// Read is the source of a request reader: first the bytes read while
// idle, then the connection.
func (cs *connState) Read(p []byte) (int, error) {
	if len(cs.pre) > 0 {
		n := copy(p, cs.pre)
		cs.pre = cs.pre[n:]
		return n, nil
	}
	return cs.c.Read(p)
}

// skipProbe bounds the wait for the next request after a response written
// by await without the read that follows it. The wait misses a request
// that arrived before the write (the client pipelines, and the runtime
// forgot that readiness when the wait began), so after skipProbe await
// reads; if that read finds a request waiting, the connection never skips
// the read again.
const skipProbe = 100 * time.Millisecond

// await waits for the next request without holding a buffer: it parks in
// a read into the connection's small preBuf. When cc is not nil, the end
// of its response (cc.out.pending) is written first, inside the same
// RawConn.Read call, and cc is released as soon as it is written. It
// reports false when the connection ended or stayed idle too long.
func (cs *connState) await(cc *clientConn) bool {
	idle := cs.svc.st.Load().cfg.IdleTimeout
	start := time.Now()
	if cs.mark != nil {
		cs.mark.setIdle(start) // may be closed to make room meanwhile
	}
	if cc == nil {
		_ = cs.c.SetReadDeadline(start.Add(idle))
		n, _ := cs.c.Read(cs.preBuf[:])
		cs.pre = cs.preBuf[:n]
		return n > 0
	}
	cs.held, cs.skip = cc, !cs.noSkip && idle >= 2*skipProbe
	if cs.skip {
		_ = cs.c.SetReadDeadline(start.Add(skipProbe))
	} else {
		_ = cs.c.SetReadDeadline(start.Add(idle))
	}
	cs.calls, cs.n, cs.err = 0, 0, nil
	err := cs.rc.Read(cs.awaitF)
	if held := cs.held; held != nil {
		// An error, or a write that would block: it is finished here,
		// outside the callback (Close must never wait for it).
		cs.held = nil
		if err == nil && cs.err == nil {
			_, err = cs.c.Write(held.out.pending)
		}
		held.out.pending = nil
		putClientConn(held)
		if err != nil || cs.err != nil {
			return false
		}
		return cs.await(nil)
	}
	if err != nil && cs.skip && errors.Is(err, os.ErrDeadlineExceeded) {
		// No readiness within skipProbe: read, in case a request
		// arrived before the wait began.
		_ = cs.c.SetReadDeadline(start.Add(idle))
		cs.skip, cs.calls, cs.n, cs.err = false, 0, 0, nil
		err = cs.rc.Read(cs.awaitF)
		if err == nil && cs.n > 0 && cs.calls == 1 {
			cs.noSkip = true // it had: the client pipelines
		}
	}
	if err != nil || cs.err != nil || cs.n == 0 {
		return false
	}
	cs.pre = cs.preBuf[:cs.n]
	return true
}

// awaitCallback is the RawConn.Read callback of await: write the end of
// the held response, then wait (skip) or read.
func (cs *connState) awaitCallback(fd uintptr) bool {
	if cc := cs.held; cc != nil {
		for len(cc.out.pending) > 0 {
			k, err := writeRaw(int(fd), cc.out.pending)
			switch err {
			case nil:
				cc.out.pending = cc.out.pending[k:]
			case syscall.EINTR:
			case syscall.EAGAIN:
				return true
			default:
				cs.err = err
				return true
			}
		}
		cs.held = nil
		putClientConn(cc)
		if cs.skip {
			return false
		}
	}
	cs.calls++
	for {
		k, err := readRaw(int(fd), cs.preBuf[:])
		switch err {
		case nil:
			cs.n = k
			return true
		case syscall.EINTR:
		case syscall.EAGAIN:
			return false
		default:
			cs.err = err
			return true
		}
	}
}

// serve runs the connection: between requests it waits in await; a
// request (and any pipelined after it) is served with a pooled clientConn
// holding the buffers.
func (cs *connState) serve() {
	var held *clientConn // a response whose end await writes
	for cs.await(held) {
		if cs.mark != nil {
			cs.mark.setBusy()
		}
		held = nil
		cc := getClientConn(cs)
		keep := cc.run()
		if len(cc.out.pending) > 0 {
			if keep {
				held = cc
				continue
			}
			_, _ = cs.c.Write(cc.out.pending) // not expected: run holds only when it goes on
			cc.out.pending = nil
		}
		putClientConn(cc)
		if !keep {
			return
		}
	}
}

func (cs *connState) unpin() { cs.pinned, cs.pinnedPool = nil, nil }

// clientConn is the per-request state of an HTTP/1.1 client connection:
// its buffers and parsed heads. It is pooled and taken only while a
// request is being served.
type clientConn struct {
	*connState
	br  *bufio.Reader
	bw  *bufio.Writer
	out clientOut // destination of bw

	req   h1.Head
	resp  h1.Head
	chunk h1.ChunkedReader

	// per request
	target      []byte
	path, query []byte
	host        []byte // without port
	body        []byte // body prefix for rules; aliases br until forwarded
	flags       rules.Flags
	avoid       []*backend.Server
	breq        balance.Request // reused: a local would escape to the heap through the Picker interface
	wrote       bool            // a byte of the response reached the client buffer
	bodyDone    bool            // the request body was read whole (or there was none)
	closeAfter  bool
	lastRefresh time.Time
	clk         bodyClock // the body moving from or to the client (BodyMinRate)
	timeIn      bool      // reads from the client count on clk
}

// clientOut is the destination of a client connection's writer: the
// connection, or with hold the pending bytes that await writes.
type clientOut struct {
	c       net.Conn
	hold    bool
	pending []byte     // aliases the writer's buffer
	clk     *bodyClock // when set, writes count on it (a response body)
}

// Write writes p to the connection, or with hold keeps it in pending.
func (o *clientOut) Write(p []byte) (int, error) {
	if o.hold {
		o.pending = p
		return len(p), nil
	}
	if o.clk == nil {
		return o.c.Write(p)
	}
	t := time.Now()
	n, err := o.c.Write(p)
	o.clk.add(time.Since(t), n)
	return n, err
}

// Read is the source of the request reader: connState.Read, timed on clk
// while a request body is read.
func (cc *clientConn) Read(p []byte) (int, error) {
	if !cc.timeIn {
		return cc.connState.Read(p)
	}
	t := time.Now()
	n, err := cc.connState.Read(p)
	cc.clk.add(time.Since(t), n)
	return n, err
}

var clientConns = sync.Pool{New: func() any { return new(clientConn) }}

func getClientConn(cs *connState) *clientConn {
	cc := clientConns.Get().(*clientConn)
	size := max(cs.svc.st.Load().cfg.MaxHeaderBytes, 4096)
	if cc.br == nil || cc.br.Size() != size {
		cc.br = bufio.NewReaderSize(cc, size)
	} else {
		cc.br.Reset(cc)
	}
	cc.out.c = cs.c
	if cc.bw == nil {
		cc.bw = bufio.NewWriterSize(&cc.out, clientWriteBuf)
	} else {
		cc.bw.Reset(&cc.out)
	}
	cc.connState = cs
	return cc
}

func putClientConn(cc *clientConn) {
	cc.br.Reset(nil)
	cc.bw.Reset(nil)
	cc.out = clientOut{}
	cc.connState, cc.body = nil, nil
	cc.timeIn = false
	cc.target, cc.path, cc.query, cc.host = nil, nil, nil, nil
	clear(cc.avoid)
	cc.avoid = cc.avoid[:0]
	cc.breq = balance.Request{}
	cc.chunk.Reset(nil, 0)
	clientConns.Put(cc)
}

// errHeadTooLarge is returned by readHead for a head that does not fit.
var errHeadTooLarge = errors.New("head too large")

// readHead returns the next message head buffered in br (not yet
// discarded), reading as needed up to max bytes.
func readHead(br *bufio.Reader, max int) ([]byte, error) { return readHeadWait(br, max, nil) }

// readHeadWait is readHead calling wait (when not nil) once before it first
// has to wait for more bytes: a head that arrived whole needs no deadline.
func readHeadWait(br *bufio.Reader, max int, wait func()) ([]byte, error) {
	scan := 0
	for {
		buf, _ := br.Peek(br.Buffered())
		if n, next := h1.HeadEnd(buf, scan); n >= 0 {
			if n > max {
				return nil, errHeadTooLarge
			}
			return buf[:n], nil
		} else {
			scan = next
		}
		if len(buf) >= max || len(buf) >= br.Size() {
			return nil, errHeadTooLarge
		}
		if wait != nil {
			wait()
			wait = nil
		}
		if _, err := br.Peek(len(buf) + 1); err != nil {
			if errors.Is(err, bufio.ErrBufferFull) {
				return nil, errHeadTooLarge
			}
			return nil, err
		}
	}
}

// run serves the request whose first bytes await reads, and any
// pipelined after it. It reports whether the connection may carry another
// request (then nothing is buffered and the response was flushed, or its
// end is held in cc.out.pending for await to write).
func (cc *clientConn) run() bool {
	_, _ = cc.br.Peek(1) // takes the bytes await read, without a system call
	for {
		// The configuration in force when the request starts serves it.
		st := cc.svc.st.Load()
		cfg := &st.cfg
		if !cc.skipEmptyLines() {
			return false
		}
		if cc.br.Buffered() == 0 {
			// Only empty lines: wait for the request as when idle.
			return cc.bw.Buffered() == 0 || cc.bw.Flush() == nil
		}
		head, err := readHeadWait(cc.br, cfg.MaxHeaderBytes, cc.headWait)
		if err != nil {
			switch {
			case errors.Is(err, errHeadTooLarge):
				cc.refuse(h1.ErrHeadTooLarge)
			case errors.Is(err, os.ErrDeadlineExceeded):
				cc.refuse(&h1.Error{Status: 408, Reason: "request head not received in time"})
			case cc.br.Buffered() > 0:
				cc.refuse(h1.ErrIncomplete)
			}
			return false
		}
		err = cc.req.ParseRequest(head, h1.Limits{MaxFields: cfg.MaxHeaders, MaxTarget: cfg.MaxURI})
		_, _ = cc.br.Discard(len(head))
		if err != nil {
			var pe *h1.Error
			if errors.As(err, &pe) {
				cc.refuse(pe)
			}
			return false
		}
		if !cc.serveRequest(st) {
			return false
		}
		if cc.br.Buffered() == 0 && len(cc.out.pending) > 0 {
			return true // await writes the end of the response
		}
		if cc.br.Buffered() == 0 {
			return cc.bw.Buffered() == 0 || cc.bw.Flush() == nil
		}
		cc.noSkip = true // the client pipelines
	}
}

// maxEmptyLines is how many empty lines (CRLF) before a request line are
// ignored; a third is refused with the request.
const maxEmptyLines = 2

// skipEmptyLines discards up to maxEmptyLines empty lines (CRLF) before a
// request line, as RFC 9112 §2.2 asks of servers: some clients send one
// after a request body. A bare LF is not one (the parser refuses it). It
// waits, under the header timeout, only for the LF of a CR that came
// alone, and reports false when the connection failed meanwhile.
func (cc *clientConn) skipEmptyLines() bool {
	for range maxEmptyLines {
		b, _ := cc.br.Peek(min(cc.br.Buffered(), 2))
		if len(b) == 0 || b[0] != '\r' {
			return true
		}
		if len(b) == 1 {
			cc.headWait()
			var err error
			if b, err = cc.br.Peek(2); err != nil {
				return false
			}
		}
		if b[1] != '\n' {
			return true
		}
		_, _ = cc.br.Discard(2)
	}
	return true
}

// headWait starts the header timeout when a head is incomplete: the rest
// must come within it, counted from now (its first bytes arrived just
// now).
func (cc *clientConn) headWait() {
	_ = cc.c.SetReadDeadline(time.Now().Add(cc.svc.st.Load().cfg.HeaderTimeout))
}

// refuse answers a request that cannot be served with its error status,
// then closes the connection gracefully.
func (cc *clientConn) refuse(e *h1.Error) {
	cc.svc.proxy.log.Debug("l7: request refused", "service", cc.svc.st.Load().cfg.Name, "client", cc.client,
		"status", e.Status, "reason", e.Reason)
	_ = cc.c.SetWriteDeadline(time.Now().Add(5 * time.Second))
	writeSimple(cc.bw, e.Status, nil, "", true)
	_ = cc.bw.Flush()
	lingerClose(cc.c, cc.raw)
}

// lingerClose half-closes c and reads what the client still sends for a
// short while, so that the error response is not lost to a reset.
func lingerClose(c net.Conn, raw *net.TCPConn) {
	if raw != nil && c == net.Conn(raw) {
		_ = raw.CloseWrite()
	}
	_ = c.SetReadDeadline(time.Now().Add(time.Second))
	_, _ = io.CopyN(io.Discard, c, 256<<10)
}

// serveRequest handles the parsed request in cc.req and reports whether
// the connection may carry another one.
func (cc *clientConn) serveRequest(st *state) bool {
	cfg := &st.cfg
	r := &cc.req
	cc.wrote, cc.closeAfter, cc.body, cc.flags = false, r.Close, nil, 0
	cc.bodyDone = r.ContentLength <= 0 && !r.Chunked
	cc.target = r.Target
	cc.path, cc.query = splitTarget(r.Target)
	cc.host = hostOnly(r.Host)
	if r.Upgrade != nil && hasH2C(r.Upgrade) {
		r.Upgrade = nil // never forward Upgrade: h2c
	}
	if st.needsBody && r.ContentLength > 0 && !r.Expect100 { // with 100-continue the body comes only when asked
		n := int(min(r.ContentLength, rules.MaxBody, int64(cc.br.Size())))
		_ = cc.c.SetReadDeadline(time.Now().Add(cfg.BodyTimeout))
		cc.body, _ = cc.br.Peek(n)
	}
	if cfg.RequestRate != nil && !cfg.RequestRate.Allow() {
		cc.errorResponse(st, nil, 429)
		return cc.finishUnread()
	}
	for _, rl := range cfg.PreRules {
		rl.Match(cc, &cc.flags)
	}
	pl := cc.route(st)
	if pl == nil {
		cc.errorResponse(st, nil, 503)
		return cc.finishUnread()
	}
	if len(cfg.RequestRules)+len(pl.RequestRules) > 0 {
		e := reqEditor{cc}
		for _, rl := range cfg.RequestRules {
			rl.Apply(e, cc.flags)
		}
		for _, rl := range pl.RequestRules {
			rl.Apply(e, cc.flags)
		}
	}
	return cc.exchange(st, pl)
}

// route chooses the pool: the service's own, or the first SubVS whose
// rules match, or the first SubVS without rules.
func (cc *clientConn) route(st *state) *Pool {
	if st.cfg.Pool != nil {
		return st.cfg.Pool
	}
	var def *Pool
	for i := range st.cfg.SubVSs {
		sv := &st.cfg.SubVSs[i]
		if len(sv.Select) == 0 {
			if def == nil {
				def = sv.Pool
			}
			continue
		}
		if rules.MatchAny(sv.Select, cc, &cc.flags) {
			return sv.Pool
		}
	}
	return def
}

// finishUnread ends a request whose body was not read: the connection can
// only continue if there was none.
func (cc *clientConn) finishUnread() bool {
	_ = cc.bw.Flush()
	return cc.bodyDone && !cc.closeAfter
}

func idempotent(m []byte) bool {
	switch string(m) {
	case "GET", "HEAD", "OPTIONS", "TRACE":
		return true
	}
	return false
}

// outcome of one attempt at a real server.
type outcome int

const (
	done         outcome = iota // the exchange completed
	retry                       // failed before anything irreversible: try again
	failed                      // failed; the client gets an error if nothing was sent
	failedClient                // the client went away or sent garbage
	timedOut                    // the real server did not answer (or take the body) in time
)

// exchange sends the request to a real server of pl, with retries, and
// relays the response. It reports whether the client connection may carry
// another request.
func (cc *clientConn) exchange(st *state, pl *Pool) bool {
	cfg := &st.cfg
	up := st.pools[pl]
	r := &cc.req
	replayable := idempotent(r.Method) && r.ContentLength <= 0 && !r.Chunked
	deadline := time.Now().Add(cfg.RetryTimeout)
	breq := &cc.breq
	*breq = balance.Request{Client: cc.client, SNI: cc.sni}
	if pl.HashURL {
		breq.HashKey = string(cc.path)
	}
	cc.avoid = cc.avoid[:0]
	if pl.Stats != nil {
		pl.Stats.Open() // a pool counts requests
		defer pl.Stats.Close()
	}
	tries, stale := 0, 0
	failStatus := 502 // what the client gets when the servers tried failed; 504 once one timed out
	for {
		breq.Avoid = cc.avoid
		srv, release, err := cc.pick(st, pl, breq)
		if err != nil {
			status := 503
			if len(cc.avoid) > 0 {
				status = failStatus // servers were tried and failed
			}
			cc.errorResponse(st, pl, status)
			return cc.finishUnread()
		}
		sni := ""
		if pl.PassSNI {
			sni = cc.sni
		}
		u := up.get(srv, sni, !replayable)
		reused := u != nil
		if u == nil {
			u, err = up.dial(cc.svc.proxy.ctx, srv, sni)
			if err != nil {
				release()
				srv.AddFailure()
				cc.svc.proxy.log.Debug("l7: connect failed", "pool", pl.Name, "server", srv.Addr(), "err", err)
				cc.avoid = append(cc.avoid, srv)
				cc.unpin()
				tries++
				if tries <= cfg.Retries && time.Now().Before(deadline) {
					continue
				}
				cc.errorResponse(st, pl, 502)
				return cc.finishUnread()
			}
		}
		res := cc.roundTrip(st, pl, up, u, srv)
		release()
		switch res {
		case done:
			return !cc.closeAfter
		case retry:
			if !reused {
				srv.AddFailure()
				cc.avoid = append(cc.avoid, srv)
				cc.unpin()
				tries++
			} else {
				stale++ // a keep-alive connection the server had closed: not the server's fault
			}
			if (reused && stale <= 2 || tries <= cfg.Retries) && time.Now().Before(deadline) {
				continue
			}
			cc.errorResponse(st, pl, failStatus)
			return cc.finishUnread()
		case timedOut:
			// No response head within ResponseTimeout, or the body not
			// taken within BodyTimeout: the server's failure, whether the
			// connection was new or kept. A replayable request that got
			// nothing yet is tried on another server.
			srv.AddFailure()
			cc.avoid = append(cc.avoid, srv)
			cc.unpin()
			tries++
			failStatus = 504
			if cc.wrote {
				return false
			}
			if replayable && tries <= cfg.Retries && time.Now().Before(deadline) {
				continue
			}
			cc.errorResponse(st, pl, 504)
			return cc.finishUnread()
		case failed:
			if !cc.wrote {
				cc.closeAfter = true
				cc.errorResponse(st, pl, 502)
			}
			return false
		default:
			return false
		}
	}
}

// pick chooses the real server: the connection's pinned one when
// scheduling per connection, else persistence or the picker; the sorry
// server when there is none.
func (cc *clientConn) pick(st *state, pl *Pool, breq *balance.Request) (*backend.Server, func(), error) {
	if !st.cfg.PerRequest && cc.pinnedPool == pl && cc.pinned != nil {
		if s := cc.pinned; s.Available() && s.Acquire(int64(s.Limit())) {
			return s, s.ReleaseFunc(), nil
		}
		cc.unpin()
	}
	var srv *backend.Server
	var release func()
	var err error
	if pl.Persist != nil {
		srv, release, err = pl.Persist.Choose(pl.Picker, breq, cc)
	} else {
		srv, release, err = pl.Picker.Pick(breq)
	}
	if err != nil {
		if pl.Sorry != nil && !containsServer(breq.Avoid, pl.Sorry) {
			pl.Sorry.Acquire(0)
			return pl.Sorry, pl.Sorry.ReleaseFunc(), nil
		}
		return nil, nil, err
	}
	if !st.cfg.PerRequest {
		cc.pinned, cc.pinnedPool = srv, pl
	}
	return srv, release, nil
}

func containsServer(list []*backend.Server, s *backend.Server) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// roundTrip sends the request on u and relays the response.
func (cc *clientConn) roundTrip(st *state, pl *Pool, up *upstreamPool, u *upConn, srv *backend.Server) outcome {
	cfg := &st.cfg
	r := &cc.req
	now := time.Now()
	cc.lastRefresh = now
	// The head goes out and the response head must come within the
	// response timeout; sendBody sets the body's deadlines, and this one
	// again once the body is out.
	_ = u.c.SetDeadline(now.Add(cfg.ResponseTimeout))
	u.io.sent = false
	writeRequestHead(u.bw, cc, st, pl)
	bodySent := r.ContentLength <= 0 && !r.Chunked
	if !r.Expect100 && !bodySent {
		if err := cc.sendBody(st, u); err != nil {
			u.close()
			return cc.bodyFailure(err)
		}
		bodySent = true
	}
	// With a plain connection, the last bytes of a request that reached
	// the server in one piece are written by the first read of the
	// response (upIO).
	if err := u.flushLast(); err != nil {
		u.close()
		return retryIf(r.ContentLength <= 0 && !r.Chunked)
	}
	for {
		head, err := readHead(u.br, DefaultMaxHeaderBytes*2)
		if err != nil {
			u.close()
			if errors.Is(err, os.ErrDeadlineExceeded) {
				cc.svc.proxy.log.Debug("l7: response timeout", "pool", pl.Name, "server", srv.Addr(),
					"timeout", cfg.ResponseTimeout)
				return timedOut
			}
			cc.svc.proxy.log.Debug("l7: no response", "pool", pl.Name, "server", srv.Addr(), "err", err)
			if bodySent && !cc.wrote {
				return retryIf(idempotent(r.Method) && r.ContentLength <= 0 && !r.Chunked)
			}
			return failed
		}
		err = cc.resp.ParseResponse(head, 200)
		_, _ = u.br.Discard(len(head))
		if err != nil {
			u.close()
			cc.svc.proxy.log.Debug("l7: bad response", "pool", pl.Name, "server", srv.Addr(), "err", err)
			return failed
		}
		s := cc.resp.Status
		if s == 101 {
			if r.Upgrade == nil {
				u.close()
				return failed
			}
			cc.upgrade(st, pl, u, srv)
			cc.closeAfter = true
			return done
		}
		if s >= 100 && s < 200 {
			if s == 100 && r.Expect100 && !bodySent {
				if r.Minor == 1 {
					_ = cc.c.SetWriteDeadline(time.Now().Add(cfg.BodyTimeout)) // the last one may be long past
					_, _ = cc.bw.WriteString("HTTP/1.1 100 Continue\r\n\r\n")
					if err := cc.bw.Flush(); err != nil {
						u.close()
						return failedClient
					}
				}
				if err := cc.sendBody(st, u); err != nil {
					u.close()
					return cc.bodyFailure(err)
				}
				bodySent = true
				if err := u.bw.Flush(); err != nil {
					u.close()
					return failed
				}
			} else if s != 100 && r.Minor == 1 {
				cc.writeInterim(st)
			}
			continue
		}
		if !bodySent {
			// A final answer to Expect: 100-continue: the body was never
			// read, so the client connection cannot carry on.
			cc.closeAfter = true
		}
		break
	}
	return cc.relayResponse(st, pl, up, u, srv, bodySent)
}

func retryIf(ok bool) outcome {
	if ok {
		return retry
	}
	return failed
}

// bodyFailure maps an error while sending the request body.
func (cc *clientConn) bodyFailure(err error) outcome {
	var pe *h1.Error
	if errors.As(err, &pe) {
		cc.refuse(pe)
		return failedClient
	}
	if errors.Is(err, errClientBody) {
		return failedClient
	}
	if errors.Is(err, os.ErrDeadlineExceeded) {
		return timedOut // the real server took nothing for BodyTimeout
	}
	return failed
}

// errClientBody marks a failure to read the client's body.
var errClientBody = errors.New("reading the request body")

// sendBody streams the request body to u. Both sides get the body
// timeout from the start (a real server that takes nothing must not be
// waited for until the response timeout), the client's reads are timed
// on cc.clk for BodyMinRate, and once the body is out the response
// timeout starts.
func (cc *clientConn) sendBody(st *state, u *upConn) error {
	now := time.Now()
	_ = cc.c.SetReadDeadline(now.Add(st.cfg.BodyTimeout))
	_ = u.c.SetDeadline(now.Add(st.cfg.BodyTimeout))
	cc.lastRefresh = now
	cc.clk, cc.timeIn = bodyClock{}, true
	err := cc.streamBody(st, u)
	cc.timeIn = false
	if err == nil && u.io.sent {
		// The end of a body written in several pieces goes out under the
		// body timeout too (a body that fits with the head is held and
		// written by the first read of the response, see upIO).
		err = u.bw.Flush()
	}
	if err == nil {
		cc.bodyDone = true
		_ = u.c.SetDeadline(time.Now().Add(st.cfg.ResponseTimeout))
	}
	return err
}

func (cc *clientConn) streamBody(st *state, u *upConn) error {
	r := &cc.req
	cc.body = nil
	if r.Chunked {
		cc.chunk.Reset(cc.br, 8<<10)
		for {
			cc.refresh(st, u)
			b, err := cc.chunk.Next()
			if err == io.EOF {
				return h1.WriteLastChunk(u.bw, cc.chunk.Trailers)
			}
			if err != nil {
				var pe *h1.Error
				if errors.As(err, &pe) {
					return err
				}
				return errClientBody
			}
			if err := h1.WriteChunk(u.bw, b); err != nil {
				return err
			}
			if cc.br.Buffered() == 0 {
				cc.refresh(st, u) // after a wait for the client, before one for the server
				if err := u.bw.Flush(); err != nil {
					return err
				}
			}
		}
	}
	left := r.ContentLength
	if left-int64(cc.br.Buffered()) >= spliceMin && cc.plainBoth(u) {
		return cc.spliceBody(st, u, left)
	}
	for left > 0 {
		cc.refresh(st, u)
		if cc.br.Buffered() == 0 {
			if _, err := cc.br.Peek(1); err != nil {
				return errClientBody
			}
			cc.refresh(st, u) // after a wait for the client, before one for the server
		}
		b, _ := cc.br.Peek(int(min(int64(cc.br.Buffered()), left)))
		n, err := u.bw.Write(b)
		_, _ = cc.br.Discard(n)
		left -= int64(n)
		if err != nil {
			return err
		}
	}
	return nil
}

// refresh extends the body timeouts of both sides, at most once a second:
// the real server's by BodyTimeout, the client's by what cc.clk allows
// (BodyTimeout, or less for a client slower than BodyMinRate).
func (cc *clientConn) refresh(st *state, u *upConn) {
	now := time.Now()
	if now.Sub(cc.lastRefresh) < time.Second {
		return
	}
	cc.lastRefresh = now
	_ = cc.c.SetDeadline(now.Add(cc.clk.allow(st.cfg.BodyTimeout, st.cfg.BodyMinRate)))
	if u != nil {
		_ = u.c.SetDeadline(now.Add(st.cfg.BodyTimeout))
	}
}

// Body modes of a response.
const (
	bodyNone = iota
	bodyLength
	bodyChunked
	bodyUntilClose
)

// relayResponse writes the response head in cc.resp and streams the body.
func (cc *clientConn) relayResponse(st *state, pl *Pool, up *upstreamPool, u *upConn, srv *backend.Server, reqDone bool) outcome {
	r, resp := &cc.req, &cc.resp
	mode := bodyUntilClose
	switch {
	case string(r.Method) == "HEAD" || resp.Status == 204 || resp.Status == 304:
		mode = bodyNone
	case resp.Chunked:
		mode = bodyChunked
	case resp.ContentLength >= 0:
		mode = bodyLength
	}
	keepUp := reqDone && !resp.Close && mode != bodyUntilClose && r.Upgrade == nil
	if r.Minor == 0 && (mode == bodyChunked || mode == bodyUntilClose) {
		cc.closeAfter = true
	}
	if len(st.cfg.ResponseRules)+len(pl.ResponseRules) > 0 {
		e := respEditor{cc}
		for _, rl := range st.cfg.ResponseRules {
			rl.Apply(e, cc.flags)
		}
		for _, rl := range pl.ResponseRules {
			rl.Apply(e, cc.flags)
		}
	}
	w := cc.bw
	now := time.Now()
	_ = cc.c.SetWriteDeadline(now.Add(st.cfg.BodyTimeout))
	if mode == bodyChunked || mode == bodyUntilClose || mode == bodyLength && int64(u.br.Buffered()) < resp.ContentLength {
		// More is to be read from the real server: the body timeout
		// replaces the response timeout, and writes to the client count
		// for BodyMinRate from the head on. (Neither for a body read
		// with the head, the common small response: it is written in
		// one or two writes under the deadline just set.)
		_ = u.c.SetReadDeadline(now.Add(st.cfg.BodyTimeout))
		cc.clk, cc.out.clk = bodyClock{}, &cc.clk
	}
	cc.lastRefresh = now
	writeStatusLine(w, resp.Status, resp.Reason)
	for i := range resp.Fields {
		f := &resp.Fields[i]
		if !f.Hop {
			writeField(w, f.Name, f.Value)
		}
	}
	if pl.Persist != nil {
		pl.Persist.Respond(srv, cc, respFields{cc}, func(name, value string) {
			if h1.IsToken([]byte(name)) && h1.ValidValue([]byte(value)) {
				_, _ = w.WriteString(name)
				_, _ = w.WriteString(": ")
				_, _ = w.WriteString(value)
				_, _ = w.WriteString("\r\n")
			}
		})
	}
	chunkOut := false
	switch mode {
	case bodyNone:
		if resp.ContentLength >= 0 && resp.Status != 204 {
			writeContentLength(w, resp.ContentLength)
		}
	case bodyLength:
		writeContentLength(w, resp.ContentLength)
	default:
		if r.Minor == 1 {
			_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
			chunkOut = true
		}
	}
	if cc.closeAfter {
		_, _ = w.WriteString("Connection: close\r\n")
	} else if r.Minor == 0 {
		_, _ = w.WriteString("Connection: keep-alive\r\n")
	}
	_, _ = w.WriteString("\r\n")
	cc.wrote = true
	var err error
	var n int64
	switch mode {
	case bodyLength:
		if cc.canSplice(u, resp.ContentLength) {
			n, err = cc.spliceResponse(st, u, resp.ContentLength)
			// Splicing reads exactly the body: bytes the server sent
			// beyond it are still on the socket, where put cannot see
			// them. Such a connection must not carry another request.
			keepUp = keepUp && err == nil && alive(u)
			break
		}
		n, err = cc.copyResponse(st, u, resp.ContentLength, false)
	case bodyChunked:
		n, err = cc.copyChunkedResponse(st, u, chunkOut)
	case bodyUntilClose:
		n, err = cc.copyResponse(st, u, -1, chunkOut)
		if err == nil && chunkOut {
			err = h1.WriteLastChunk(w, nil)
		}
	}
	if err == nil {
		err = cc.flushResponse()
	}
	cc.out.clk = nil
	srv.AddBytes(max(r.ContentLength, 0), n)
	if err != nil {
		u.close()
		return failedClient
	}
	if keepUp {
		up.put(u)
	} else {
		u.close()
	}
	return done
}

// flushResponse flushes the end of a response. When the connection is
// plain TCP and waits for the next request next (it stays open and no
// pipelined request is buffered), the bytes are held for await to write
// inside the RawConn.Read call in which it waits.
func (cc *clientConn) flushResponse() error {
	if cc.rc == nil || cc.closeAfter || !cc.bodyDone || cc.br.Buffered() > 0 {
		return cc.bw.Flush()
	}
	cc.out.hold = true
	err := cc.bw.Flush()
	cc.out.hold = false
	return err
}

// copyResponse streams n bytes (or, with n < 0, everything until the
// server closes) from u to the client, chunk-encoding with chunkOut.
func (cc *clientConn) copyResponse(st *state, u *upConn, n int64, chunkOut bool) (int64, error) {
	var done int64
	for n < 0 || done < n {
		if u.br.Buffered() == 0 {
			cc.refresh(st, u) // after a wait for the server, before one for the client
			if err := cc.bw.Flush(); err != nil {
				return done, err
			}
			cc.refresh(st, u)
			if _, err := u.br.Peek(1); err != nil {
				if n < 0 && err == io.EOF {
					return done, nil
				}
				return done, err
			}
		}
		k := u.br.Buffered()
		if n >= 0 {
			k = int(min(int64(k), n-done))
		}
		b, _ := u.br.Peek(k)
		var err error
		if chunkOut {
			err = h1.WriteChunk(cc.bw, b)
		} else {
			_, err = cc.bw.Write(b)
		}
		_, _ = u.br.Discard(k)
		done += int64(k)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// Splicing: a response body of known length at least spliceMin long,
// between plain TCP connections, is moved by the kernel (splice(2) through
// a pipe, by *net.TCPConn.ReadFrom) in pieces of spliceStep, each with a
// fresh body timeout.
const (
	spliceMin  = 64 << 10
	spliceStep = 256 << 10
)

// canSplice reports whether a body of n bytes from u may be spliced to the
// client: both sides are plain TCP and the body is large enough.
func (cc *clientConn) canSplice(u *upConn, n int64) bool {
	return n-int64(u.br.Buffered()) >= spliceMin && cc.plainBoth(u)
}

// plainBoth reports whether the client connection and u are both plain TCP.
func (cc *clientConn) plainBoth(u *upConn) bool {
	return !cc.isTLS && cc.raw != nil && u.raw != nil && u.c == net.Conn(u.raw)
}

// spliceBody sends a request body of n bytes to u: what the client
// connection has buffered goes out with the head, the rest is spliced from
// socket to socket. A body that ends early is the client's failure
// (errClientBody), and so is a timeout while waiting for it; another
// failure while splicing cannot tell the two sides apart and is reported
// as the real server's.
func (cc *clientConn) spliceBody(st *state, u *upConn, n int64) error {
	k := int(min(int64(cc.br.Buffered()), n))
	b, _ := cc.br.Peek(k)
	_, err := u.bw.Write(b)
	_, _ = cc.br.Discard(k)
	if err == nil {
		err = u.bw.Flush()
	}
	if err != nil {
		return err
	}
	done := int64(k)
	for done < n {
		// The real server's deadline is a second later than the latest
		// the client's can be, so that a timeout tells which side
		// stalled. The client's counts BodyMinRate; the time of a whole
		// step counts as waiting for the client (splicing cannot tell
		// the sides apart).
		start := time.Now()
		clientDeadline := start.Add(cc.clk.allow(st.cfg.BodyTimeout, st.cfg.BodyMinRate))
		serverDeadline := start.Add(st.cfg.BodyTimeout + time.Second)
		_ = cc.c.SetReadDeadline(clientDeadline)
		_ = u.c.SetWriteDeadline(serverDeadline)
		m, err := io.CopyN(u.raw, cc.raw, min(n-done, spliceStep))
		done += m
		end := time.Now()
		cc.clk.add(end.Sub(start), int(m))
		if errors.Is(err, os.ErrDeadlineExceeded) && end.Before(serverDeadline) && m > 0 {
			// The client's deadline, in a read: nothing is lost (the pipe
			// is empty between reads), and it made progress in this step;
			// the next step's deadline says whether it is still fast
			// enough.
			continue
		}
		if errors.Is(err, io.EOF) || errors.Is(err, os.ErrDeadlineExceeded) && end.Before(serverDeadline) {
			return errClientBody
		}
		if err != nil {
			return err
		}
	}
	cc.lastRefresh = time.Now()
	return nil
}

// spliceResponse sends n bytes of body from u to the client: what u has
// buffered goes out with the head, the rest is spliced from socket to
// socket. A body that ends early is an error, as in copyResponse.
func (cc *clientConn) spliceResponse(st *state, u *upConn, n int64) (int64, error) {
	k := int(min(int64(u.br.Buffered()), n))
	b, _ := u.br.Peek(k)
	_, err := cc.bw.Write(b)
	_, _ = u.br.Discard(k)
	done := int64(k)
	if err == nil {
		err = cc.bw.Flush()
	}
	for err == nil && done < n {
		// The client's deadline counts BodyMinRate, the time of a whole
		// step counting as waiting for the client. A step must end within
		// it (a write to the client that times out loses what the pipe
		// held).
		start := time.Now()
		_ = cc.c.SetWriteDeadline(start.Add(cc.clk.allow(st.cfg.BodyTimeout, st.cfg.BodyMinRate)))
		_ = u.c.SetReadDeadline(start.Add(st.cfg.BodyTimeout))
		var m int64
		m, err = io.CopyN(cc.raw, u.raw, min(n-done, spliceStep))
		done += m
		cc.clk.add(time.Since(start), int(m))
	}
	cc.lastRefresh = time.Now()
	return done, err
}

// copyChunkedResponse streams a chunked body from u, re-chunked (with its
// trailers) for HTTP/1.1 clients or as plain data for HTTP/1.0 ones.
func (cc *clientConn) copyChunkedResponse(st *state, u *upConn, chunkOut bool) (int64, error) {
	cc.chunk.Reset(u.br, 8<<10)
	var n int64
	for {
		if u.br.Buffered() == 0 {
			cc.refresh(st, u) // after a wait for the server, before one for the client
			if err := cc.bw.Flush(); err != nil {
				return n, err
			}
			cc.refresh(st, u)
		}
		b, err := cc.chunk.Next()
		if err == io.EOF {
			if chunkOut {
				return n, h1.WriteLastChunk(cc.bw, cc.chunk.Trailers)
			}
			return n, nil
		}
		if err != nil {
			return n, err
		}
		n += int64(len(b))
		if chunkOut {
			err = h1.WriteChunk(cc.bw, b)
		} else {
			_, err = cc.bw.Write(b)
		}
		if err != nil {
			return n, err
		}
	}
}

// writeInterim relays a 1xx response other than 100 (e.g. 103).
func (cc *clientConn) writeInterim(st *state) {
	resp := &cc.resp
	_ = cc.c.SetWriteDeadline(time.Now().Add(st.cfg.BodyTimeout)) // the last one may be long past
	writeStatusLine(cc.bw, resp.Status, resp.Reason)
	for i := range resp.Fields {
		if f := &resp.Fields[i]; !f.Hop {
			writeField(cc.bw, f.Name, f.Value)
		}
	}
	_, _ = cc.bw.WriteString("\r\n")
	_ = cc.bw.Flush()
}

func writeStatusLine(w *bufio.Writer, status int, reason []byte) {
	b := append(w.AvailableBuffer(), "HTTP/1.1 "...)
	b = strconv.AppendInt(b, int64(status), 10)
	b = append(b, ' ')
	_, _ = w.Write(b)
	if len(reason) == 0 {
		_, _ = w.WriteString(statusText(status))
	} else {
		_, _ = w.Write(reason)
	}
	_, _ = w.WriteString("\r\n")
}

func writeField(w *bufio.Writer, name, value []byte) {
	_, _ = w.Write(name)
	_, _ = w.WriteString(": ")
	_, _ = w.Write(value)
	_, _ = w.WriteString("\r\n")
}

func writeContentLength(w *bufio.Writer, n int64) {
	b := append(w.AvailableBuffer(), "Content-Length: "...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, '\r', '\n')
	_, _ = w.Write(b)
}

// splitTarget splits "/p?q" into "/p" and "q".
func splitTarget(t []byte) (path, query []byte) {
	if i := bytes.IndexByte(t, '?'); i >= 0 {
		return t[:i], t[i+1:]
	}
	return t, nil
}

// hostOnly strips the port from a Host value.
func hostOnly(h []byte) []byte {
	if len(h) > 0 && h[0] == '[' {
		if i := bytes.IndexByte(h, ']'); i >= 0 {
			return h[:i+1]
		}
		return h
	}
	if i := bytes.LastIndexByte(h, ':'); i >= 0 {
		return h[:i]
	}
	return h
}

func hasH2C(v []byte) bool {
	for len(v) > 0 {
		var t []byte
		if i := bytes.IndexByte(v, ','); i >= 0 {
			t, v = v[:i], v[i+1:]
		} else {
			t, v = v, nil
		}
		if bytes.EqualFold(bytes.TrimSpace(t), []byte("h2c")) {
			return true
		}
	}
	return false
}
