package l7

import (
	"bufio"
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"sync"
	"syscall"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
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

	pin pinned // per connection scheduling

	// bytes counts the client's bytes (read: in, written: out); logIn
	// and logOut are its counts when the last request ended.
	bytes         byteMeter
	logIn, logOut int64

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

// newConnState returns the state of client connection c, which is TLS
// when isTLS; raw is c when c is plain TCP that may be read and written
// by raw system calls and spliced, else nil.
func newConnState(s *Service, c net.Conn, raw *net.TCPConn, isTLS bool, client netip.AddrPort, sni string, m *connMark) *connState {
	if raw != nil && c != net.Conn(raw) {
		raw = nil
	}
	cs := &connState{svc: s, c: c, raw: raw, client: client, sni: sni, mark: m, isTLS: isTLS}
	cs.clientIP = client.Addr().AppendTo(cs.ipBuf[:0])
	if raw != nil {
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
		cs.bytes.in += int64(n)
		return n, nil
	}
	n, err := cs.c.Read(p)
	cs.bytes.in += int64(n)
	return n, err
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
			break
		}
	}
	cs.bytes.flushVS(cs.svc.st.Load().cfg.Stats) // what no request took (a refused one, a partial head)
}

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
	breq        balance.Request // reused: a local would escape to the heap through the Picker interface
	wrote       bool            // a byte of the response reached the client buffer
	bodyDone    bool            // the request body was read whole (or there was none)
	closeAfter  bool
	lastRefresh time.Time
	clk         bodyClock // the body moving from or to the client (BodyMinRate)
	timeIn      bool      // reads from the client count on clk
	sentAt      time.Time // when the request head of the current attempt went out
	headAt      time.Time // when the head of its response came in
	cnt         reqCount
	entry       accesslog.Entry // the access log's, reused
}

// clientOut is the destination of a client connection's writer: the
// connection, or with hold the pending bytes that await writes.
type clientOut struct {
	c       net.Conn
	hold    bool
	pending []byte     // aliases the writer's buffer
	clk     *bodyClock // when set, writes count on it (a response body)
	bytes   *byteMeter // the connection's: writes count as out
}

// Write writes p to the connection, or with hold keeps it in pending.
func (o *clientOut) Write(p []byte) (int, error) {
	if o.hold {
		o.pending = p
		o.bytes.out += int64(len(p))
		return len(p), nil
	}
	if o.clk == nil {
		n, err := o.c.Write(p)
		o.bytes.out += int64(n)
		return n, err
	}
	t := time.Now()
	n, err := o.c.Write(p)
	o.clk.add(time.Since(t), n)
	o.bytes.out += int64(n)
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
	cc.out.c, cc.out.bytes = cs.c, &cs.bytes
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
	clear(cc.breq.Avoid)
	cc.breq = balance.Request{Avoid: cc.breq.Avoid[:0]} // keeps the array
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
			cc.cnt.begin(time.Now())
			cc.entry = accesslog.Entry{}
			switch {
			case errors.Is(err, errHeadTooLarge):
				cc.refuse(h1.ErrHeadTooLarge)
			case errors.Is(err, os.ErrDeadlineExceeded):
				cc.refuse(&h1.Error{Status: 408, Reason: "request head not received in time"})
			case cc.br.Buffered() > 0:
				cc.refuse(h1.ErrIncomplete)
			}
			if cc.cnt.Status != 0 {
				cc.endRequest(st)
			}
			return false
		}
		err = cc.req.ParseRequest(head, h1.Limits{MaxFields: cfg.MaxHeaders, MaxTarget: cfg.MaxURI})
		_, _ = cc.br.Discard(len(head))
		cc.beginRequest(st, err == nil)
		if err != nil {
			var pe *h1.Error
			if errors.As(err, &pe) {
				cc.refuse(pe)
				cc.endRequest(st)
			}
			return false
		}
		keep := cc.serveRequest(st)
		cc.endRequest(st)
		if !keep {
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
	cc.cnt.answered(e.Status)
	cc.cnt.Invalid = true
	writeSimple(cc.bw, e.Status, nil, "", true)
	cc.cnt.complete = cc.bw.Flush() == nil
	lingerClose(cc.c, cc.raw)
}

// beginRequest starts counting the request whose head was just read
// (parsed when parsed: then the access log takes its strings now, before
// the buffer they alias is reused).
func (cc *clientConn) beginRequest(st *state, parsed bool) {
	cc.cnt.begin(time.Now())
	if st.cfg.AccessLog == nil {
		return
	}
	e := &cc.entry
	*e = accesslog.Entry{}
	if !parsed {
		return
	}
	r := &cc.req
	e.Method, e.Host, e.URI = methodString(r.Method), string(r.Host), string(r.Target)
	e.Proto = "HTTP/1.1"
	if r.Minor == 0 {
		e.Proto = "HTTP/1.0"
	}
	for i := range r.Fields {
		if f := &r.Fields[i]; len(f.Name) == len("User-Agent") && equalFoldString(string(f.Name), "user-agent") {
			e.UserAgent = string(f.Value)
			break
		}
	}
}

// endRequest adds the request to the counters and the access log.
func (cc *clientConn) endRequest(st *state) {
	cfg := &st.cfg
	cc.cnt.record(cfg, time.Now())
	cc.bytes.flushVS(cfg.Stats)
	in, out := cc.bytes.in-cc.logIn, cc.bytes.out-cc.logOut
	cc.logIn, cc.logOut = cc.bytes.in, cc.bytes.out
	if cfg.AccessLog != nil {
		logEntry(&cc.entry, cfg, &cc.cnt, cc.client, cc.c.LocalAddr(), cc.sni, in, out)
		cfg.AccessLog.Log(&cc.entry)
	}
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
