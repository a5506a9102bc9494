package l7

import (
	"net"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// Making room under a connection limit. A client connection that waits
// for its next request (an idle keep-alive connection, or one that has
// not sent anything yet; an HTTP/2 connection without a stream) costs its
// client nothing to keep, so a flood of them could hold a service at its
// maxConns, or every service at the ceiling, and lock real clients out.
// When a new connection meets a limit, the longest idle connection of a
// sample (of the service, or of any service at the ceiling) is closed to
// make room for it (an HTTP/2 one after a GOAWAY), as nginx reuses
// keep-alive connections when it runs short. Connections in the middle of
// a request are never closed: they are bounded by headerTimeout and the
// body timeouts instead.

// connMark is what the proxy knows of a client connection for making
// room: its service, and since when it has been idle.
type connMark struct {
	svc  *Service
	idle atomic.Int64           // Unix nanoseconds since which the connection waits for a request; 0: busy
	h2   atomic.Pointer[h2conn] // set while it is served as HTTP/2
}

func (m *connMark) setIdle(t time.Time) { m.idle.Store(t.UnixNano()) }

func (m *connMark) setBusy() { m.idle.Store(0) }

// evictSample is how many connections a search for room looks at.
const evictSample = 256

// makeRoom closes the longest idle client connection of a sample — of svc,
// or of any service when svc is nil — and reports whether it closed one.
// The closed connection is counted on its service as limitHits.sessions.
func (p *Proxy) makeRoom(svc *Service) bool {
	var best net.Conn
	var bestMark *connMark
	var bestIdle int64
	p.mu.Lock()
	n := 0
	for c, m := range p.conns { // map order is random: a random run of connections
		if n++; n > evictSample {
			break
		}
		if svc != nil && m.svc != svc {
			continue
		}
		if t := m.idle.Load(); t > 0 && (best == nil || t < bestIdle) {
			best, bestMark, bestIdle = c, m, t
		}
	}
	p.mu.Unlock()
	if best == nil || !bestMark.idle.CompareAndSwap(bestIdle, 0) {
		return false // none, or it woke up (or another new connection took it) meanwhile
	}
	bestMark.svc.st.Load().cfg.Stats.AddLimitHit(backend.LimitSessions)
	if hc := bestMark.h2.Load(); hc != nil {
		hc.g.goAway(http2.ErrCodeNo, "connection limit")
	}
	_ = best.Close()
	return true
}
