package backend

import (
	"sync/atomic"
	"time"
)

// This file keeps what HAProxy's exporter reports beside plain counters:
// maxima since start, moving averages of connect and total times, reuses
// of pooled connections, who broke off aborted requests. Every write is
// one atomic add, or a compare-and-swap only when a maximum grows: no
// lock, no allocation on the data path.

// storeMax raises v to x when x is larger.
func storeMax(v *atomic.Int64, x int64) {
	for {
		old := v.Load()
		if x <= old || v.CompareAndSwap(old, x) {
			return
		}
	}
}

// ewma is an exponentially weighted moving average of durations (weight
// of a new sample 1/8, as Metrics' latency); 0 means no sample yet.
type ewma struct{ v atomic.Int64 }

func (e *ewma) observe(d time.Duration) {
	x := max(int64(d), 1)
	for {
		old := e.v.Load()
		next := x
		if old != 0 {
			next = max(old+(x-old)>>latencyShift, 1)
		}
		if e.v.CompareAndSwap(old, next) {
			return
		}
	}
}

// Extra are a real server's counters for HAProxy's exporter. The zero
// value is ready; every method is safe for concurrent use.
type Extra struct {
	connect     ewma
	total       ewma
	maxConnect  atomic.Int64 // ns
	maxResponse atomic.Int64 // ns
	maxTotal    atomic.Int64 // ns
	reuses      atomic.Int64
	redispatch  atomic.Int64
	clientAbort atomic.Int64
	serverAbort atomic.Int64
	respErrors  atomic.Int64
	idle        atomic.Int64
}

// ObserveConnect records the time one connection to the server took to
// be established (with its TLS handshake when re-encrypting).
func (s *Server) ObserveConnect(d time.Duration) {
	s.extra.connect.observe(d)
	storeMax(&s.extra.maxConnect, int64(d))
}

// ObserveResponse records the time from a request going out to the
// server's response head (a maximum only: the average is Metrics').
func (s *Server) ObserveResponse(d time.Duration) { storeMax(&s.extra.maxResponse, int64(d)) }

// ObserveTotal records the total time of a request the server answered.
func (s *Server) ObserveTotal(d time.Duration) {
	s.extra.total.observe(d)
	storeMax(&s.extra.maxTotal, int64(d))
}

// AddReuse counts a request sent on a kept (pooled) connection.
func (s *Server) AddReuse() { s.extra.reuses.Add(1) }

// AddRedispatch counts an attempt at the server after which the request
// was tried again (on another server, or on a new connection).
func (s *Server) AddRedispatch() { s.extra.redispatch.Add(1) }

// AddAbort counts a request to the server that ended without a complete
// answer: broken off by the server (byServer) or by the client.
func (s *Server) AddAbort(byServer bool) {
	if byServer {
		s.extra.serverAbort.Add(1)
	} else {
		s.extra.clientAbort.Add(1)
	}
}

// AddResponseError counts a bad or missing response of the server.
func (s *Server) AddResponseError() { s.extra.respErrors.Add(1) }

// AddIdle changes the number of idle pooled connections to the server.
func (s *Server) AddIdle(n int64) { s.extra.idle.Add(n) }

// ExtraSnapshot is a Server's Extra read at one moment.
type ExtraSnapshot struct {
	// MaxActive is the most connection slots reserved at once.
	MaxActive int64
	// MaxConnRate is the highest rate of new connections over one
	// second of sampling.
	MaxConnRate float64
	// LastConn is about when the last connection was established (1 s
	// resolution: the sampling's); zero before the first.
	LastConn time.Time
	// ConnectTime and TotalTime are moving averages; MaxConnectTime,
	// MaxResponseTime and MaxTotalTime maxima since start.
	ConnectTime, TotalTime                        time.Duration
	MaxConnectTime, MaxResponseTime, MaxTotalTime time.Duration
	// Reuses, Redispatches, ClientAborts, ServerAborts and
	// ResponseErrors count as the Add methods say.
	Reuses, Redispatches, ClientAborts, ServerAborts, ResponseErrors int64
	// Idle is the idle pooled connections now.
	Idle int64
}

// Extra returns the server's counters for HAProxy's exporter.
func (s *Server) Extra() ExtraSnapshot {
	x := &s.extra
	rate, last := s.meter.peaks()
	return ExtraSnapshot{
		MaxActive: s.peak.Load(), MaxConnRate: rate, LastConn: last,
		ConnectTime: time.Duration(x.connect.v.Load()), TotalTime: time.Duration(x.total.v.Load()),
		MaxConnectTime: time.Duration(x.maxConnect.Load()), MaxResponseTime: time.Duration(x.maxResponse.Load()),
		MaxTotalTime: time.Duration(x.maxTotal.Load()),
		Reuses:       x.reuses.Load(), Redispatches: x.redispatch.Load(),
		ClientAborts: x.clientAbort.Load(), ServerAborts: x.serverAbort.Load(),
		ResponseErrors: x.respErrors.Load(), Idle: max(x.idle.Load(), 0),
	}
}

// MaxActive returns the most connections active at once since start.
func (c *Counters) MaxActive() int64 { return c.peak.Load() }

// Peaks returns the highest rate of new connections over one second of
// sampling and about when the last one was counted (1 s resolution; zero
// before the first).
func (c *Counters) Peaks() (maxRate float64, last time.Time) { return c.meter.peaks() }
