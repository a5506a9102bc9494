package l7

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"net"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/sockopt"
)

// upBufSize is the size of the read and write buffers of a connection to a
// real server.
const upBufSize = 16 << 10

// upConn is one connection to a real server.
type upConn struct {
	c       net.Conn
	raw     *net.TCPConn
	io      upIO // source of br and destination of bw
	br      *bufio.Reader
	bw      *bufio.Writer
	srv     *backend.Server
	sni     string
	from    netip.Addr // the client address it was made from (transparent); zero otherwise
	idle    time.Time
	untrack func()
}

// close closes the connection for good, adding the bytes it moved since
// the last flush to its real server's counters.
func (u *upConn) close() {
	u.io.bytes.flushRS(u.srv)
	_ = u.c.Close()
	if u.untrack != nil {
		u.untrack()
		u.untrack = nil
	}
}

// trackUp records a connection to a real server so that Close can end it;
// it reports false (and closes c) when the proxy is closed.
func (p *Proxy) trackUp(c net.Conn) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.closed {
		_ = c.Close()
		return false
	}
	p.ups[c] = struct{}{}
	return true
}

func (p *Proxy) untrackUp(c net.Conn) {
	p.mu.Lock()
	delete(p.ups, c)
	p.mu.Unlock()
}

// upstreamPool holds the idle keep-alive connections of one Pool, per
// real server.
type upstreamPool struct {
	proxy *Proxy
	pool  *Pool

	// reserver reserves a pinned server through the pool's picker; nil
	// when the picker cannot (then a connection does not stay pinned).
	reserver balance.Reserver
	// sorryDone is the done func of the pool's sorry server, made once.
	sorryDone func(balance.Outcome)
	// opts are the socket options of its connections (mark,
	// transparency); dialer carries them.
	opts   sockopt.Options
	dialer net.Dialer

	mu     sync.Mutex
	idle   map[*backend.Server][]*upConn
	closed bool
}

func newUpstreamPool(p *Proxy, pl *Pool, opts sockopt.Options) *upstreamPool {
	up := &upstreamPool{proxy: p, pool: pl, idle: map[*backend.Server][]*upConn{}, opts: opts, dialer: p.dialer}
	if !opts.Zero() {
		up.dialer.Control = opts.Control()
	}
	up.reserver, _ = pl.Picker.(balance.Reserver)
	if pl.Sorry != nil {
		up.sorryDone = balance.Release(pl.Sorry)
	}
	p.mu.Lock()
	if p.pools == nil {
		p.pools = map[*upstreamPool]struct{}{}
	}
	if p.closed {
		up.closed = true // puts close their connections
	} else {
		p.pools[up] = struct{}{}
	}
	p.mu.Unlock()
	return up
}

// from returns the address a connection to srv for client leaves from:
// the client's own when the pool is transparent and srv is of its
// family, else the zero Addr (the kernel's choice).
func (up *upstreamPool) from(srv *backend.Server, client netip.Addr) netip.Addr {
	if !up.opts.Transparent || !client.IsValid() {
		return netip.Addr{}
	}
	if ap, ok := srv.AddrPort(); !ok || ap.Addr().Unmap().Is4() != client.Unmap().Is4() {
		return netip.Addr{}
	}
	return client.Unmap()
}

// get returns an idle connection to srv (with the given SNI when
// re-encrypting with PassSNI) made from address from, or nil. With check,
// an idle connection is first tested for having been closed by the
// server.
func (up *upstreamPool) get(srv *backend.Server, sni string, from netip.Addr, check bool) *upConn {
	for {
		up.mu.Lock()
		list := up.idle[srv]
		var u *upConn
		for i := len(list) - 1; i >= 0; i-- {
			if list[i].sni == sni && list[i].from == from {
				u = list[i]
				list = append(list[:i], list[i+1:]...)
				up.idle[srv] = list
				srv.AddIdle(-1)
				break
			}
		}
		up.mu.Unlock()
		if u == nil {
			return nil
		}
		idle := time.Since(u.idle)
		if idle > UpstreamIdleTimeout || ((check || idle > upstreamPeekAfter) && !alive(u)) {
			u.close()
			continue
		}
		return u
	}
}

// put keeps u for reuse, or closes it when the pool is closed or full.
func (up *upstreamPool) put(u *upConn) {
	// The bytes are counted now: once in the pool, the connection is
	// another request's (another goroutine's).
	u.io.bytes.flushRS(u.srv)
	if u.br.Buffered() > 0 { // the server sent more than the response: unusable
		u.close()
		return
	}
	u.idle = time.Now()
	up.mu.Lock()
	if up.closed || len(up.idle[u.srv]) >= MaxIdlePerServer {
		up.mu.Unlock()
		u.close()
		return
	}
	up.idle[u.srv] = append(up.idle[u.srv], u)
	u.srv.AddIdle(1)
	up.mu.Unlock()
}

// close closes every idle connection; later puts close theirs.
func (up *upstreamPool) close() {
	up.mu.Lock()
	up.closed = true
	all := up.idle
	up.idle = map[*backend.Server][]*upConn{}
	for srv, list := range all {
		srv.AddIdle(-int64(len(list)))
	}
	up.mu.Unlock()
	for _, list := range all {
		for _, u := range list {
			u.close()
		}
	}
	up.proxy.mu.Lock()
	delete(up.proxy.pools, up)
	up.proxy.mu.Unlock()
}

// expire closes connections idle for longer than UpstreamIdleTimeout.
func (up *upstreamPool) expire(now time.Time) {
	var old []*upConn
	up.mu.Lock()
	for srv, list := range up.idle {
		keep := list[:0]
		for _, u := range list {
			if now.Sub(u.idle) > UpstreamIdleTimeout {
				old = append(old, u)
			} else {
				keep = append(keep, u)
			}
		}
		srv.AddIdle(-int64(len(list) - len(keep)))
		if len(keep) == 0 {
			delete(up.idle, srv)
		} else {
			up.idle[srv] = keep
		}
	}
	up.mu.Unlock()
	for _, u := range old {
		u.close()
	}
}

// upstreamPeekAfter is how long a kept connection may have been idle
// before get tests it (alive) even for a replayable request. The request
// of a reused connection is written inside the wait for its answer
// (upio.go), which cannot see a FIN that arrived while the connection was
// idle: a server that half-closed it and kept reading would leave the
// request waiting until its timeout instead of being retried at once. A
// server closes idle connections after seconds, so the test costs a busy
// pool nothing (its connections are reused within milliseconds).
const upstreamPeekAfter = time.Second

// alive reports whether an idle connection is still open: nothing (no
// FIN, no stray bytes) is waiting on its socket. It costs one
// non-blocking recv(MSG_PEEK).
func alive(u *upConn) bool {
	if u.raw == nil {
		return true
	}
	rc, err := u.raw.SyscallConn()
	if err != nil {
		return false
	}
	ok := false
	var buf [1]byte
	_ = rc.Read(func(fd uintptr) bool {
		n, _, err := unix.Recvfrom(int(fd), buf[:], unix.MSG_PEEK|unix.MSG_DONTWAIT)
		ok = n < 0 && (errors.Is(err, syscall.EAGAIN) || errors.Is(err, syscall.EWOULDBLOCK))
		return true
	})
	return ok
}

// errDial wraps a failed connect or TLS handshake: always retryable on
// another server.
type errDial struct{ err error }

func (e *errDial) Error() string { return "connect to real server: " + e.err.Error() }
func (e *errDial) Unwrap() error { return e.err }

// dial opens a new connection to srv from address from (zero: the
// kernel's choice), with TLS when the pool re-encrypts.
func (up *upstreamPool) dial(ctx context.Context, srv *backend.Server, sni string, from netip.Addr) (*upConn, error) {
	p := up.proxy
	d := &up.dialer
	if from.IsValid() {
		t := up.dialer // a copy: its LocalAddr is this connection's
		t.LocalAddr = &net.TCPAddr{IP: from.AsSlice()}
		d = &t
	}
	start := time.Now()
	c, err := d.DialContext(ctx, "tcp", srv.Addr())
	if err != nil {
		return nil, &errDial{err}
	}
	raw := c.(*net.TCPConn)
	_ = raw.SetNoDelay(true)
	u := &upConn{c: c, raw: raw, srv: srv, sni: sni, from: from}
	if cfg := up.pool.Reencrypt; cfg != nil {
		if sni != "" || (cfg.ServerName == "" && !cfg.InsecureSkipVerify) {
			cfg = cfg.Clone()
			if sni != "" {
				cfg.ServerName = sni
			} else {
				host, _, _ := net.SplitHostPort(srv.Addr())
				cfg.ServerName = host
			}
		}
		tc := tls.Client(c, cfg)
		hctx, cancel := context.WithTimeout(ctx, p.dialer.Timeout)
		err := tc.HandshakeContext(hctx)
		cancel()
		if err != nil {
			_ = c.Close()
			return nil, &errDial{err}
		}
		if !tc.ConnectionState().DidResume {
			p.tls.serverFull.Add(1)
		}
		u.c = tc
	}
	srv.ObserveConnect(time.Since(start))
	if !p.trackUp(u.c) {
		return nil, &errDial{errors.New("proxy closed")}
	}
	u.io.init(u.c, raw)
	u.br = bufio.NewReaderSize(&u.io, upBufSize)
	u.bw = bufio.NewWriterSize(&u.io, upBufSize)
	untrack := srv.Track(u.c)
	u.untrack = func() { untrack(); p.untrackUp(u.c) }
	return u, nil
}
