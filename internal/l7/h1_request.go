package l7

import (
	"bufio"
	"errors"
	"io"
	"os"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/l7/h1"
	"github.com/fulcrum-lb/fulcrum/internal/l7/rules"
)

// This file is an HTTP/1.1 request on its way to a real server: routing,
// the exchange (the protocol's side of the attempt loop), the request head
// and body sent upstream, and the response head read back.

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
	pl := route(st, cc, &cc.flags)
	if pl == nil {
		cc.cnt.ProxyError, cc.cnt.term = true, "no-server"
		cc.errorResponse(st, nil, 503)
		return cc.finishUnread()
	}
	cc.cnt.pool = pl
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

// route chooses the pool of a request, whichever its protocol: the
// service's own, or the first SubVS whose rules match, or the first SubVS
// without rules.
func route(st *state, req rules.Request, flags *rules.Flags) *Pool {
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
		if rules.MatchAny(sv.Select, req, flags) {
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

// exchange sends the request to a real server of pl, with retries (the
// attempt loop, see exchange.go), and relays the response. It reports
// whether the client connection may carry another request.
func (cc *clientConn) exchange(st *state, pl *Pool) bool {
	r := &cc.req
	breq := &cc.breq
	*breq = balance.Request{Client: cc.client, SNI: cc.sni, Avoid: breq.Avoid[:0]}
	if pl.HashURL {
		breq.HashKey = string(cc.path)
	}
	xr := exchangeReq{ctx: cc.svc.proxy.ctx, breq: breq, pin: &cc.pin,
		replayable: idempotent(r.Method) && r.ContentLength <= 0 && !r.Chunked}
	if pl.PassSNI {
		xr.sni = cc.sni
	}
	end, status := exchange(st, pl, cc, &xr)
	cc.cnt.ended(&xr)
	switch end {
	case endRelayed:
		return !cc.closeAfter
	case endAnswer:
		cc.cnt.ProxyError = true
		cc.errorResponse(st, pl, status)
		return cc.finishUnread()
	case endFailed, endAborted:
		if !cc.wrote {
			cc.cnt.ProxyError = true
			cc.closeAfter = true
			cc.errorResponse(st, pl, status)
		}
	}
	return false
}

// status implements exchanger.
func (cc *clientConn) status() int { return cc.resp.Status }

// latency implements exchanger.
func (cc *clientConn) latency() time.Duration { return cc.headAt.Sub(cc.sentAt) }

// answered implements exchanger.
func (cc *clientConn) answered() bool { return cc.wrote }

// roundTrip implements exchanger: it sends the request on u and relays
// the response.
func (cc *clientConn) roundTrip(st *state, pl *Pool, up *upstreamPool, u *upConn, srv *backend.Server) outcome {
	cfg := &st.cfg
	r := &cc.req
	now := time.Now()
	cc.lastRefresh, cc.sentAt = now, now
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
			cc.headAt = time.Now()
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

// writeRequestHead writes the request head forwarded to a real server:
// the request line with the (possibly rewritten) target, Host, the
// client's end-to-end fields as the forwarding policy keeps them (see
// forward.go), then Fulcrum's own forwarding headers and the framing.
func writeRequestHead(w *bufio.Writer, cc *clientConn, st *state, pl *Pool) {
	r := &cc.req
	_, _ = w.Write(r.Method)
	_ = w.WriteByte(' ')
	_, _ = w.Write(cc.target)
	_, _ = w.WriteString(" HTTP/1.1\r\nHost: ")
	if pl.HostRewrite != "" {
		_, _ = w.WriteString(pl.HostRewrite)
	} else {
		_, _ = w.Write(r.Host)
	}
	_, _ = w.WriteString("\r\n")
	fw := newForwarding(&st.cfg, cc.client.Addr())
	hasProto := fw.writeH1Fields(w, r)
	proto, via := "http", viaValue
	if cc.isTLS {
		proto = "https"
	}
	if r.Minor == 0 {
		via = viaValue10
	}
	fw.writeOwn(w, priorXFF{h1: r}, cc.clientIP, proto, hasProto, via)
	if r.Upgrade != nil {
		_, _ = w.WriteString("Connection: Upgrade\r\nUpgrade: ")
		_, _ = w.Write(r.Upgrade)
		_, _ = w.WriteString("\r\n")
	}
	if r.Expect100 {
		_, _ = w.WriteString("Expect: 100-continue\r\n")
	}
	if r.TrailersOK {
		_, _ = w.WriteString("TE: trailers\r\n")
	}
	switch {
	case r.Chunked:
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	case r.ContentLength >= 0:
		writeContentLength(w, r.ContentLength)
	}
	_, _ = w.WriteString("\r\n")
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
	cc.bytes.flushVS(st.cfg.Stats) // a long body counts while it moves
	if u != nil {
		_ = u.c.SetDeadline(now.Add(st.cfg.BodyTimeout))
		u.io.bytes.flushRS(u.srv)
	}
}
