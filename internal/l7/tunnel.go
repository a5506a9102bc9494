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
	cc.cnt.answered(101)
	if err := w.Flush(); err != nil {
		u.close()
		return
	}
	cc.cnt.complete = true
	_ = cc.c.SetDeadline(time.Time{})
	_ = u.c.SetDeadline(time.Time{})
	// What the tunnel moves goes to the shared counters as it moves
	// (the meters, owned by this goroutine, are flushed first), and
	// into the meters afterwards for the access log.
	stats := st.cfg.Stats
	// The bytes the readers hold were counted on the side they were
	// read from; the tunnel writes them to the other side first.
	ka, kb := int64(cc.br.Buffered()), int64(u.br.Buffered())
	cc.bytes.out += kb
	u.io.bytes.in += ka
	cc.bytes.flushVS(stats)
	u.io.bytes.flushRS(srv)
	in, out := tunnel(cc.c, cc.br, u.c, u.br, st.cfg.IdleTimeout,
		func(n int64) { stats.AddBytes(n, 0); srv.AddBytes(n, 0) },
		func(n int64) { stats.AddBytes(0, n); srv.AddBytes(0, n) })
	in, out = in-ka, out-kb
	cc.bytes.in, cc.bytes.takenIn = cc.bytes.in+in, cc.bytes.takenIn+in
	cc.bytes.out, cc.bytes.takenO = cc.bytes.out+out, cc.bytes.takenO+out
	u.io.bytes.in, u.io.bytes.takenIn = u.io.bytes.in+in, u.io.bytes.takenIn+in
	u.io.bytes.out, u.io.bytes.takenO = u.io.bytes.out+out, u.io.bytes.takenO+out
	u.close()
}

var tunnelBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

// tunnel copies a→b and b→a (starting with what their readers already
// buffered) until both directions end; an idle period of idle on either
// read ends that direction, and an error closes both connections. It
// returns the bytes copied each way; addAB and addBA are given them as
// they are copied (those the readers held excepted), at most about once
// a second and at the end.
func tunnel(a net.Conn, ar *bufio.Reader, b net.Conn, br *bufio.Reader, idle time.Duration, addAB, addBA func(int64)) (ab, ba int64) {
	var once sync.Once
	abort := func() { once.Do(func() { _ = a.Close(); _ = b.Close() }) }
	res := make(chan int64, 1)
	go func() { res <- pump(b, a, ar, idle, abort, addAB) }()
	ba = pump(a, b, br, idle, abort, addBA)
	ab = <-res
	return ab, ba
}

// pump copies src (first its buffered bytes) to dst; at a clean end it
// half-closes dst, on an error it aborts. add is given the bytes copied
// after those sr held, at most about once a second and at the end.
func pump(dst, src net.Conn, sr *bufio.Reader, idle time.Duration, abort func(), add func(int64)) (n int64) {
	var added int64
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
	added = n // the held bytes are the caller's to count
	defer func() { add(n - added) }()
	bp := tunnelBufs.Get().(*[]byte)
	defer tunnelBufs.Put(bp)
	buf := *bp
	last := time.Now()
	for {
		now := time.Now()
		if now.Sub(last) >= time.Second && n > added {
			add(n - added)
			added, last = n, now
		}
		_ = src.SetReadDeadline(now.Add(idle))
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
