package l7

import (
	"bufio"
	"bytes"
	"io"
	"strconv"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/l7/h1"
)

// This file relays a real server's response to an HTTP/1.1 client: the
// head with the response rules and persistence applied, and the body,
// copied or re-chunked.

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
	cc.headAt = now
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
	cc.cnt.answered(resp.Status)
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
	switch mode {
	case bodyLength:
		if cc.canSplice(u, resp.ContentLength) {
			_, err = cc.spliceResponse(st, u, resp.ContentLength)
			// Splicing reads exactly the body: bytes the server sent
			// beyond it are still on the socket, where put cannot see
			// them. Such a connection must not carry another request.
			keepUp = keepUp && err == nil && alive(u)
			break
		}
		_, err = cc.copyResponse(st, u, resp.ContentLength, false)
	case bodyChunked:
		_, err = cc.copyChunkedResponse(st, u, chunkOut)
	case bodyUntilClose:
		_, err = cc.copyResponse(st, u, -1, chunkOut)
		if err == nil && chunkOut {
			err = h1.WriteLastChunk(w, nil)
		}
	}
	if err == nil {
		err = cc.flushResponse()
	}
	cc.out.clk = nil
	if err != nil {
		u.close()
		return failedClient
	}
	cc.cnt.complete = true
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
