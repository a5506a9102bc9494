package l4

import (
	"errors"
	"io"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// Shaper limits the bytes per second of a set of connections, each
// direction on its own: client→server (In) and server→client (Out) may
// each carry the rate. It is a token bucket (golang.org/x/time/rate) whose
// burst is a fifth of a second of traffic, at least 4 KiB and at most
// 4 MiB: short-term excess stays small against the rate (at most 2% over
// 10 s), and a copy that wakes up late on a busy machine can catch up
// rather than lose throughput.
//
// Shaping needs the bytes in user space, so a shaped connection is not
// spliced: a Service copies through user space only when it has a Shaper.
// A Shaper can be shared by many Services (the global throughput limit is
// one Shaper for all) and its rate changed while in use (SetRate).
type Shaper struct {
	// Hit is the limit counted on the service's counters each time a copy
	// had to wait for this Shaper.
	Hit backend.Limit
	in  *rate.Limiter
	out *rate.Limiter
}

// NewShaper returns a Shaper of bytesPerSec in each direction; hit names
// the limit in the counters.
func NewShaper(bytesPerSec float64, hit backend.Limit) *Shaper {
	s := &Shaper{Hit: hit, in: rate.NewLimiter(0, 1), out: rate.NewLimiter(0, 1)}
	s.SetRate(bytesPerSec)
	return s
}

// SetRate changes the rate; connections being shaped follow at once. A
// rate of 0 or less removes the limit.
func (s *Shaper) SetRate(bytesPerSec float64) {
	lim, burst := rate.Inf, maxBurst
	if bytesPerSec > 0 {
		lim = rate.Limit(bytesPerSec)
		burst = min(max(int(bytesPerSec/5), minBurst), maxBurst)
	}
	for _, l := range []*rate.Limiter{s.in, s.out} {
		l.SetBurst(burst)
		l.SetLimit(lim)
	}
}

// Rate returns the rate in bytes per second of each direction; 0 when
// unlimited.
func (s *Shaper) Rate() float64 {
	if l := s.in.Limit(); l != rate.Inf {
		return float64(l)
	}
	return 0
}

// Limiter returns the token bucket of one direction (in: client→server),
// for proxies that police datagrams rather than shape streams.
func (s *Shaper) Limiter(in bool) *rate.Limiter {
	if in {
		return s.in
	}
	return s.out
}

const (
	minBurst  = 4 << 10
	maxBurst  = 4 << 20
	chunkSize = 64 << 10
)

var chunkPool = sync.Pool{New: func() any { b := make([]byte, chunkSize); return &b }}

// pipeShaped is pipe for a shaped session: both directions are copied
// through user space and wait for their Shapers. The idle watchdog and
// the accounting read the kernel as for spliced connections.
func (ss *session) pipeShaped(server *net.TCPConn) (in, out int64) {
	cfg := &ss.svc.cfg
	if cfg.IdleTimeout > 0 {
		w := watch(ss.client, server, cfg.IdleTimeout, ss.close, &ss.term)
		defer w.stop()
	}
	up := make(chan int64, 1)
	var ended atomic.Int32
	go func() {
		n, err := ss.shapedCopy(server, ss.client, true)
		ss.finIn.Store(n)
		finish(server, err, ss.close, &ended, &ss.term, termClient)
		up <- n
	}()
	n, err := ss.shapedCopy(ss.client, server, false)
	ss.finOut.Store(n)
	finish(ss.client, err, ss.close, &ended, &ss.term, termServer)
	return <-up, n
}

// errClosed is returned by shapedCopy when the session was closed while it
// waited.
var errClosed = errors.New("session closed")

// shapedCopy copies src to dst until EOF (nil error) or an error, waiting
// for the service's and the global Shaper of the direction before each
// write.
func (ss *session) shapedCopy(dst, src *net.TCPConn, in bool) (int64, error) {
	cfg := &ss.svc.cfg
	var lims [2]*rate.Limiter
	var hits [2]backend.Limit
	k := 0
	for _, s := range []*Shaper{cfg.Bandwidth, cfg.Throughput} {
		if s != nil {
			lims[k], hits[k] = s.Limiter(in), s.Hit
			k++
		}
	}
	bp := chunkPool.Get().(*[]byte)
	defer chunkPool.Put(bp)
	buf := *bp
	var timer *time.Timer
	defer func() {
		if timer != nil {
			timer.Stop()
		}
	}()
	var total int64
	for {
		chunk := len(buf)
		for _, l := range lims[:k] {
			chunk = min(chunk, l.Burst())
		}
		n, rerr := src.Read(buf[:max(chunk, 1)])
		if n > 0 {
			for i, l := range lims[:k] {
				now := time.Now()
				r := l.ReserveN(now, n)
				if !r.OK() { // the burst shrank under us: the rate was lowered
					continue
				}
				d := r.DelayFrom(now)
				if d <= 0 {
					continue
				}
				cfg.Stats.AddLimitHit(hits[i])
				if timer == nil {
					timer = time.NewTimer(d)
				} else {
					timer.Reset(d)
				}
				select {
				case <-timer.C:
				case <-ss.done:
					return total, errClosed
				}
			}
			w, werr := dst.Write(buf[:n])
			total += int64(w)
			if werr != nil {
				return total, werr
			}
		}
		if rerr == io.EOF {
			return total, nil
		}
		if rerr != nil {
			return total, rerr
		}
	}
}
