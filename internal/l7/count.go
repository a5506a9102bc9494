package l7

import (
	"net"
	"net/netip"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// This file counts what requests do. A request counts locally, in plain
// fields of its connection or stream, while it runs; the shared atomics
// (backend.Counters, backend.Server, backend.HTTPCounters) get it once at
// the request's end, and about once a second while a long body or an
// upgraded tunnel moves (with the body timeouts' refresh).

// byteMeter counts the bytes of one side of a connection: in is what was
// read from the client or written to the real server, out the other way.
// It is owned by one goroutine; take moves what is new to shared counters.
type byteMeter struct {
	in, out         int64 // since the meter began
	takenIn, takenO int64 // the part already taken
}

// take returns the bytes counted since the last take.
func (m *byteMeter) take() (in, out int64) {
	in, out = m.in-m.takenIn, m.out-m.takenO
	m.takenIn, m.takenO = m.in, m.out
	return in, out
}

// flushVS adds what is new on m to the service's counters.
func (m *byteMeter) flushVS(c *backend.Counters) {
	if m.in != m.takenIn || m.out != m.takenO {
		c.AddBytes(m.take())
	}
}

// flushRS adds what is new on m to the real server's counters.
func (m *byteMeter) flushRS(s *backend.Server) {
	if s != nil && (m.in != m.takenIn || m.out != m.takenO) {
		s.AddBytes(m.take())
	}
}

// reqCount is what one request did, counted while it runs.
type reqCount struct {
	backend.Request
	start    time.Time
	complete bool            // the last answer begun was written whole
	pool     *Pool           // where the request went; nil before routing
	srv      *backend.Server // the last real server tried
	term     string          // how it ended, for the access log
}

// begin starts counting a request whose head was read at now.
func (r *reqCount) begin(now time.Time) {
	*r = reqCount{start: now}
	r.TTFB = -1
}

// record adds the request to the service's and its SubVS's counters.
func (r *reqCount) record(cfg *ServiceConfig, now time.Time) {
	r.Duration = now.Sub(r.start)
	r.Aborted = !r.complete
	if r.Aborted && r.term == "" {
		r.term = "client-abort"
	}
	r.ServerAbort = r.Aborted && (r.term == "server-abort" || r.term == "server-timeout")
	if s := r.srv; s != nil {
		if r.TTFB >= 0 {
			s.ObserveTotal(r.Duration)
		}
		if r.Aborted {
			s.AddAbort(r.ServerAbort)
		}
	}
	cfg.HTTP.Record(&r.Request)
	if r.pool != nil && r.pool.HTTP != nil {
		r.pool.HTTP.Record(&r.Request)
	}
}

// ended takes what the attempt loop reports of a request.
func (r *reqCount) ended(xr *exchangeReq) {
	r.srv = xr.srv
	r.Retries = max(xr.attempts-1, 0)
	r.TTFB = xr.ttfb
	r.term = xr.term
}

// answered notes the status of an answer begun to the client.
func (r *reqCount) answered(status int) { r.Status, r.complete = status, false }

// logEntry fills the fields of e that the end of request r of the
// service cfg gives; the request's own (Method, Host, URI, Proto,
// UserAgent) were set when it began, as the strings are copied then.
func logEntry(e *accesslog.Entry, cfg *ServiceConfig, r *reqCount, client netip.AddrPort, local net.Addr, sni string, in, out int64) {
	e.Time, e.Kind, e.VS, e.VSName = r.start, accesslog.KindHTTP, cfg.VS, cfg.VSName
	e.Client, e.Status, e.BytesIn, e.BytesOut = client, r.Status, in, out
	e.TTFB, e.Duration, e.Retries, e.Termination, e.SNI = r.TTFB, r.Duration, r.Retries, r.term, sni
	if e.TTFB < 0 {
		e.TTFB = -1
	}
	e.Frontend = netip.AddrPort{}
	if a, ok := local.(*net.TCPAddr); ok {
		ap := a.AddrPort()
		e.Frontend = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
	}
	e.SubVS, e.SubVSName = 0, ""
	if r.pool != nil {
		e.SubVS, e.SubVSName = r.pool.SubVS, r.pool.SubVSName
	}
	e.Server, e.ServerID = "", 0
	if r.srv != nil {
		e.Server = r.srv.Addr()
		if r.pool == nil || r.srv != r.pool.Sorry {
			e.ServerID = r.srv.Settings().ID
		}
	}
}

// methodString returns m as a string, without allocating for the common
// methods.
func methodString(m []byte) string {
	for _, k := range [...]string{"GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH"} {
		if string(m) == k {
			return k
		}
	}
	return string(m)
}
