package l7

import (
	"bufio"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"runtime"
	"strconv"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/l7/h1"
)

// This file is an HTTP/2 request on its way to a real server, over
// HTTP/1.1: the exchange (the protocol's side of the attempt loop), the
// request head and body sent upstream, and the response relayed to the
// stream.

// exchange sends an HTTP/2 request to a real server of pl over HTTP/1.1,
// with retries (the attempt loop, see exchange.go), and relays the
// response.
func (hc *h2conn) exchange(st *state, pl *Pool, q *h2req, w http.ResponseWriter) {
	r := q.r
	q.w = w
	q.hasBody = r.Body != nil && r.Body != http.NoBody && r.ContentLength != 0
	breq := balance.Request{Client: hc.client, SNI: hc.sni}
	if pl.HashURL {
		breq.HashKey = string(q.path)
	}
	xr := exchangeReq{ctx: r.Context(), breq: &breq, replayable: !q.hasBody && idempotentString(r.Method)}
	if pl.PassSNI {
		xr.sni = hc.sni
	}
	end, status := exchange(st, pl, q, &xr)
	q.cnt.ended(&xr)
	switch end {
	case endAnswer:
		q.cnt.ProxyError = true
		q.error(w, unavailable(pl, status, []byte(r.Host), q.target))
	case endFailed:
		q.cnt.ProxyError = true
		q.error(w, answer{status: status})
	case endBroken:
		// The response broke off after its head: reset the stream so
		// that the client cannot take a truncated body as complete.
		panic(http.ErrAbortHandler)
	}
}

// idempotentString is idempotent for a method as a string.
func idempotentString(m string) bool {
	return m == "GET" || m == "HEAD" || m == "OPTIONS" || m == "TRACE"
}

// latency implements exchanger.
func (q *h2req) latency() time.Duration { return q.headAt.Sub(q.sentAt) }

// answered implements exchanger.
func (q *h2req) answered() bool { return q.wrote }

// status implements exchanger.
func (q *h2req) status() int { return q.resp }

// roundTrip implements exchanger: it writes the request on u and relays
// the response to the stream.
func (q *h2req) roundTrip(st *state, pl *Pool, up *upstreamPool, u *upConn, srv *backend.Server) outcome {
	cfg := &st.cfg
	r, w, hc, hasBody := q.r, q.w, q.hc, q.hasBody
	// The head goes out and the response head must come within the
	// response timeout; a body is sent under the body timeouts (h2Body).
	q.sentAt = time.Now()
	_ = u.c.SetDeadline(q.sentAt.Add(cfg.ResponseTimeout))
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
	fwd := newForwarding(cfg, hc.client.Addr())
	prior, hasProto := fwd.writeH2Fields(bw, r.Header)
	fwd.writeOwn(bw, priorXFF{h2: prior}, hc.clientIP, "https", hasProto, viaValue2)
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
		b := h2Body{r: r.Body, rc: http.NewResponseController(w), u: u, cfg: cfg, q: q}
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
			hc.svc.proxy.log.Debug("l7: no response", "pool", pl.Name, "server", srv.Addr(), "err", err)
			// A request that reached the server and got no answer may
			// have been processed: only a replayable one is retried.
			return retryIf(!hasBody && idempotentString(r.Method))
		}
		err = resp.ParseResponse(head, 200)
		_, _ = u.br.Discard(len(head))
		if err != nil {
			u.close()
			hc.svc.proxy.log.Debug("l7: bad response", "pool", pl.Name, "server", srv.Addr(), "err", err)
			return failed
		}
		if resp.Status >= 200 {
			break
		}
		if resp.Status == 101 {
			u.close()
			return failed
		}
		if resp.Status != 100 {
			h := w.Header()
			addFields(h, resp.Fields, false, -1)
			q.bytes.out += headBytes(h)
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
	q.wrote, q.resp = true, resp.Status
	q.cnt.answered(resp.Status)
	q.bytes.out += headBytes(h)
	w.WriteHeader(resp.Status)
	// The real server's side of the body is bounded by BodyTimeout
	// without progress, the client's by the body clock (flushWriter).
	now := time.Now()
	q.headAt = now
	_ = u.c.SetReadDeadline(now.Add(cfg.BodyTimeout))
	fw := &flushWriter{w: w, src: u.br, left: -1, u: u, cfg: cfg, last: now, q: q}
	switch mode2 {
	case bodyLength:
		fw.left, fw.peeked = resp.ContentLength, true
	case bodyUntilClose:
		fw.peeked = true
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
	_ = n
	if err != nil {
		u.close()
		return failedClient // the caller resets the stream
	}
	q.cnt.complete = true
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
	// peeked is set when the bytes written are still in src's buffer
	// (h1.CopyN and h1.CopyAll discard them after the write): they are
	// not more to come.
	peeked bool

	u       *upConn
	cfg     *ServiceConfig
	q       *h2req // counts the bytes written
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
		f.q.bytes.flushVS(f.cfg.Stats) // a long body counts while it moves
		f.u.io.bytes.flushRS(f.u.srv)
	}
	n, err := f.w.Write(b)
	f.q.bytes.out += int64(n)
	if f.left >= 0 {
		f.left -= int64(n)
	}
	rest := f.src.Buffered()
	if f.peeked {
		rest -= n
	}
	if err == nil && f.left != 0 && rest <= f.slack {
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
	q    *h2req // counts the bytes read
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
		b.q.bytes.flushVS(b.cfg.Stats) // a long body counts while it moves
		b.u.io.bytes.flushRS(b.u.srv)
	}
	n, err := b.r.Read(p)
	b.q.bytes.in += int64(n)
	b.clk.add(time.Since(start), n)
	if err != nil && err != io.EOF {
		b.err = err
	}
	return n, err
}
