package l7

import (
	"errors"
	"io"
	"net"
	"os"
	"time"
)

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
		cc.bytes.in += m
		u.io.bytes.in += m
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
		cc.bytes.out += m
		u.io.bytes.out += m
		cc.clk.add(time.Since(start), int(m))
	}
	if errors.Is(err, io.EOF) {
		// io.CopyN's short copy: the real server ended the body early
		// (reads through u.io, which would say so, are bypassed here).
		u.io.broke = true
	}
	cc.lastRefresh = time.Now()
	return done, err
}
