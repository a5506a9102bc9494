package l7

import (
	"bufio"
	"io"
	"net"
	"sync"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/l7/h1"
)

// upgrade relays a 101 Switching Protocols answer to a request that asked
// for an upgrade, and then tunnels bytes both ways until both sides are
// done. The real server's connection is never reused afterwards.
func (cc *clientConn) upgrade(st *state, pl *Pool, u *upConn, srv *backend.Server) {
	resp := &cc.resp
	w := cc.bw
	writeStatusLine(w, 101, resp.Reason)
	for i := range resp.Fields {
		if f := &resp.Fields[i]; !f.Hop {
			writeField(w, f.Name, f.Value)
		}
	}
	// The parser marks Upgrade hop-by-hop; a 101 passes it on.
	for i := range resp.Fields {
		if f := &resp.Fields[i]; f.Kind == h1.KindUpgrade {
			writeField(w, f.Name, f.Value)
			break
		}
	}
	_, _ = w.WriteString("Connection: Upgrade\r\n\r\n")
	cc.wrote = true
	if err := w.Flush(); err != nil {
		u.close()
		return
	}
	_ = cc.c.SetDeadline(time.Time{})
	_ = u.c.SetDeadline(time.Time{})
	in, out := tunnel(cc.c, cc.br, u.c, u.br, st.cfg.IdleTimeout)
	srv.AddBytes(in, out)
	u.close()
}

var tunnelBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// tunnel copies a→b and b→a (starting with what their readers already
// buffered) until both directions end; an idle period of idle on either
// read ends that direction, and an error closes both connections.
func tunnel(a net.Conn, ar *bufio.Reader, b net.Conn, br *bufio.Reader, idle time.Duration) (ab, ba int64) {
	var once sync.Once
	abort := func() { once.Do(func() { _ = a.Close(); _ = b.Close() }) }
	res := make(chan int64, 1)
	go func() { res <- pump(b, a, ar, idle, abort) }()
	ba = pump(a, b, br, idle, abort)
	ab = <-res
	return ab, ba
}

// pump copies src (first its buffered bytes) to dst; at a clean end it
// half-closes dst, on an error it aborts.
func pump(dst, src net.Conn, sr *bufio.Reader, idle time.Duration, abort func()) int64 {
	var n int64
	if k := sr.Buffered(); k > 0 {
		b, _ := sr.Peek(k)
		m, err := dst.Write(b)
		n += int64(m)
		_, _ = sr.Discard(k)
		if err != nil {
			abort()
			return n
		}
	}
	bp := tunnelBufs.Get().(*[]byte)
	defer tunnelBufs.Put(bp)
	buf := *bp
	for {
		_ = src.SetReadDeadline(time.Now().Add(idle))
		k, err := src.Read(buf)
		if k > 0 {
			_ = dst.SetWriteDeadline(time.Now().Add(idle))
			m, werr := dst.Write(buf[:k])
			n += int64(m)
			if werr != nil {
				abort()
				return n
			}
		}
		if err != nil {
			if err == io.EOF {
				if cw, ok := dst.(interface{ CloseWrite() error }); ok {
					_ = cw.CloseWrite()
					return n
				}
			}
			abort()
			return n
		}
	}
}
