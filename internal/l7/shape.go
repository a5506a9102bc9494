package l7

import (
	"net"
	"time"

	"golang.org/x/time/rate"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/l4"
)

// shapedConn is a client connection whose reads (client→server, "in")
// and writes (server→client, "out") wait for the service's bandwidth and
// the global throughput Shapers, like a shaped layer-4 connection. Reads
// and writes move at most a burst at a time, so that a wait never exceeds
// what the rate allows.
type shapedConn struct {
	net.Conn
	in, out shapedDir // a read and a write may run at once (HTTP/2)
	hits    [2]backend.Limit
	k       int
	stats   *backend.Counters
	done    <-chan struct{} // the proxy closing: waits end
}

// shapedDir is one direction of a shapedConn.
type shapedDir struct {
	lims  [2]*rate.Limiter // nil-padded
	timer *time.Timer
}

// newShapedConn shapes c by bandwidth and throughput (either may be
// nil); hits are counted on stats; waits end when done is closed.
func newShapedConn(c net.Conn, bandwidth, throughput *l4.Shaper, stats *backend.Counters, done <-chan struct{}) *shapedConn {
	s := &shapedConn{Conn: c, stats: stats, done: done}
	for _, sh := range []*l4.Shaper{bandwidth, throughput} {
		if sh != nil {
			s.in.lims[s.k], s.out.lims[s.k], s.hits[s.k] = sh.Limiter(true), sh.Limiter(false), sh.Hit
			s.k++
		}
	}
	return s
}

// chunk bounds n by the bursts of d's limiters.
func (s *shapedConn) chunk(d *shapedDir, n int) int {
	for _, l := range d.lims[:s.k] {
		n = min(n, l.Burst())
	}
	return max(n, 1)
}

// wait waits until n bytes may pass dir's limiters; it reports false when the proxy
// closed meanwhile.
func (s *shapedConn) wait(dir *shapedDir, n int) bool {
	for i, l := range dir.lims[:s.k] {
		now := time.Now()
		r := l.ReserveN(now, n)
		if !r.OK() { // the burst shrank under us: the rate was lowered
			continue
		}
		d := r.DelayFrom(now)
		if d <= 0 {
			continue
		}
		if s.stats != nil {
			s.stats.AddLimitHit(s.hits[i])
		}
		if dir.timer == nil {
			dir.timer = time.NewTimer(d)
		} else {
			dir.timer.Reset(d)
		}
		select {
		case <-dir.timer.C:
		case <-s.done:
			return false
		}
	}
	return true
}

// Read reads at most a burst and waits for the bytes read.
func (s *shapedConn) Read(p []byte) (int, error) {
	n, err := s.Conn.Read(p[:s.chunk(&s.in, len(p))])
	if n > 0 && !s.wait(&s.in, n) {
		return n, net.ErrClosed
	}
	return n, err
}

// Write waits for and writes p a burst at a time.
func (s *shapedConn) Write(p []byte) (int, error) {
	total := 0
	for len(p) > 0 {
		k := s.chunk(&s.out, len(p))
		if !s.wait(&s.out, k) {
			return total, net.ErrClosed
		}
		n, err := s.Conn.Write(p[:k])
		total += n
		if err != nil {
			return total, err
		}
		p = p[k:]
	}
	return total, nil
}
