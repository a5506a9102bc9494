package udp

import (
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/l4"
)

// epoch is the origin of sessions' activity times.
var epoch = time.Now()

// unproven is how much lower an unproven session ranks for eviction than
// a proven one with the same activity time: more than any activity time,
// so every unproven session goes before every proven one.
const unproven = 1 << 62

// session is one client's flow to one real server.
type session struct {
	svc   *Service
	key   key
	srv   *backend.Server
	done  func(balance.Outcome) // releases the picker's reservation
	slot  int32
	set   *pollSet
	peer  unix.Sockaddr   // the client, as the VIP socket sends to it
	vip   syscall.RawConn // the VIP socket's
	last  atomic.Int64    // time of the last datagram either way, since epoch
	reply atomic.Bool     // a reply was sent to the client
	proof atomic.Bool     // the client sent a datagram after a reply: it is no spoofed source

	// For the access log (counted only when the service logs):
	born    time.Time
	retries int
	in, out atomic.Int64  // bytes forwarded to the real server, and to the client
	term    atomic.Uint32 // why it ended (termIdle…); the first cause set wins

	closing atomic.Bool
	mu      sync.Mutex // guards fd against its close, and untrack
	fd      int        // the socket to the real server; -1 once closed
	untrack func()
}

func (ss *session) touch() { ss.last.Store(int64(time.Since(epoch))) }

// rank orders sessions for eviction, lowest first: those that have not
// proved a round trip, then the least recently active.
func (ss *session) rank() int64 {
	if ss.proof.Load() {
		return ss.last.Load()
	}
	return ss.last.Load() - unproven
}

// Close ends the session (io.Closer, so that backend.Server.CloseConns
// drops it).
func (ss *session) Close() error {
	ss.end(termClosed)
	return nil
}

// end records why the session ends (unless a cause is there) and ends
// it.
func (ss *session) end(term uint32) {
	ss.term.CompareAndSwap(termNone, term)
	ss.close()
}

// close ends the session and releases all it holds, once; it may be
// called from any goroutine, and by the session's start.
func (ss *session) close() {
	if !ss.closing.CompareAndSwap(false, true) {
		return
	}
	p := ss.svc.proxy
	p.table.remove(ss.key, func(v *session) bool { return v == ss })
	ss.mu.Lock()
	fd, untrack := ss.fd, ss.untrack
	ss.fd = -1
	ss.mu.Unlock()
	ss.set.closeSocket(ss, fd)
	if untrack != nil {
		untrack()
	}
	// A session proves nothing about its server (UDP has no handshake,
	// and a reply may not be due): its end reports no outcome.
	ss.done(balance.Outcome{})
	ss.svc.cfg.Stats.Close()
	p.releaseSlot(ss.slot)
	if ss.svc.cfg.AccessLog != nil {
		ss.svc.logEntry(ss.key, ss.born, ss.srv, ss.retries, ss.in.Load(), ss.out.Load(), ss.term.Load())
	}
}

// police reports whether a datagram of n bytes in direction in may pass
// the service's and the global limits; it counts the ones that may not.
func (ss *session) police(n int, in bool) bool {
	cfg := &ss.svc.cfg
	for _, s := range []*l4.Shaper{cfg.Bandwidth, cfg.Throughput} {
		if s == nil {
			continue
		}
		l := s.Limiter(in)
		if !l.AllowN(time.Now(), min(n, l.Burst())) {
			cfg.Stats.AddLimitHit(s.Hit)
			return false
		}
	}
	return true
}

// forward sends a client's datagram to the real server. A datagram the
// socket cannot take at once (a full send buffer, a pending ICMP error)
// is dropped: the client retransmits.
func (ss *session) forward(p []byte) {
	if (ss.svc.cfg.Bandwidth != nil || ss.svc.cfg.Throughput != nil) && !ss.police(len(p), true) {
		return
	}
	ss.touch()
	if !ss.proof.Load() && ss.reply.Load() {
		ss.proof.Store(true)
	}
	ss.mu.Lock()
	err := errClosed
	if ss.fd >= 0 {
		_, err = unix.Write(ss.fd, p)
	}
	ss.mu.Unlock()
	if err != nil {
		return
	}
	n := int64(len(p))
	ss.svc.cfg.Stats.AddBytes(n, 0)
	ss.srv.AddBytes(n, 0)
	if ss.svc.cfg.AccessLog != nil {
		ss.in.Add(n)
	}
}

// reader reads real servers' replies and sends them to the clients; a
// poll set has one. Sending goes through the VIP socket's RawConn, with a
// callback made once, so a reply allocates nothing.
type reader struct {
	bufs   [][]byte // recvSlots datagrams of maxDatagram
	lens   []int    // the length of each datagram read
	batch  recvBatch
	out    []byte        // the reply being sent
	to     unix.Sockaddr // its client
	err    error         // the send's
	sendTo func(fd uintptr) bool
}

func newReader() *reader {
	r := &reader{bufs: make([][]byte, recvSlots), lens: make([]int, recvSlots)}
	for i := range r.bufs {
		r.bufs[i] = make([]byte, maxDatagram)
	}
	r.batch.init(r.bufs)
	r.sendTo = func(fd uintptr) bool {
		r.err = unix.Sendto(int(fd), r.out, 0, r.to)
		return true // never wait for the VIP socket: a reply it cannot take now is dropped
	}
	return r
}

// Outcomes of reader.serve.
const (
	drained = iota // the socket has nothing more to read
	more           // the batch is read; more may be waiting
	ended          // the session is closed
)

// serve reads what is waiting on ss's socket, up to recvSlots datagrams,
// and sends each to the client.
func (r *reader) serve(ss *session) int {
	cfg := &ss.svc.cfg
	n := 0
	for try := 0; ; try++ {
		var open bool
		var err error
		n, open, err = r.recv(ss)
		switch {
		case !open:
			return ended
		case err == unix.EAGAIN:
			return drained
		case err != nil && try < 2:
			continue // ECONNREFUSED from an ICMP port unreachable, now cleared: keep the session, the server may come back
		case err != nil:
			return more
		}
		break
	}
	for i, p := range r.bufs[:n] {
		p = p[:r.lens[i]]
		if (cfg.Bandwidth != nil || cfg.Throughput != nil) && !ss.police(len(p), false) {
			continue
		}
		ss.touch()
		// The reply is marked before it is sent: a client that answers
		// it at once is read by another goroutine, which must see the
		// mark to count that datagram as the session's proof.
		first := !ss.reply.Load() && ss.reply.CompareAndSwap(false, true)
		r.out, r.to = p, ss.peer
		werr := ss.vip.Write(r.sendTo)
		r.out, r.to = nil, nil
		if werr != nil || r.err != nil {
			if first {
				ss.reply.Store(false) // nothing reached the client
			}
		} else {
			cfg.Stats.AddBytes(0, int64(len(p)))
			ss.srv.AddBytes(0, int64(len(p)))
			if cfg.AccessLog != nil {
				ss.out.Add(int64(len(p)))
			}
		}
	}
	if n < len(r.bufs) {
		return drained // fewer than asked for: nothing was left
	}
	return more
}
