package backend

import (
	"sync/atomic"
	"time"
)

// DurationBounds are the upper bounds of the buckets of a Histogram (the
// same as status.DurationBounds, in seconds there); the +Inf bucket is
// implicit.
var DurationBounds = [NumBounds]time.Duration{
	time.Millisecond, 2500 * time.Microsecond, 5 * time.Millisecond, 10 * time.Millisecond,
	25 * time.Millisecond, 50 * time.Millisecond, 100 * time.Millisecond, 250 * time.Millisecond,
	500 * time.Millisecond, time.Second, 2500 * time.Millisecond, 5 * time.Second,
	10 * time.Second, 25 * time.Second, 60 * time.Second,
}

// NumBounds is the number of finite bounds of a Histogram.
const NumBounds = 15

// Histogram counts durations in the buckets of DurationBounds, with
// atomics: Observe never blocks or allocates. The zero value is ready.
type Histogram struct {
	buckets [NumBounds + 1]atomic.Uint64 // not cumulative; the last is +Inf
	sum     atomic.Int64                 // nanoseconds
}

// Observe counts one duration (a negative one as 0).
func (h *Histogram) Observe(d time.Duration) {
	d = max(d, 0)
	i := 0
	for i < NumBounds && d > DurationBounds[i] {
		i++
	}
	h.buckets[i].Add(1)
	h.sum.Add(int64(d))
}

// HistogramSnapshot is a Histogram read at one moment, in Prometheus's
// shape.
type HistogramSnapshot struct {
	// Counts are, per bound of DurationBounds, the observations not above
	// it (cumulative).
	Counts [NumBounds]uint64
	// Count is the number of observations.
	Count uint64
	// Sum is the sum of the observations.
	Sum time.Duration
}

// Snapshot returns the histogram's counts. Each atomic is read once;
// observations made meanwhile may be counted in Sum and not in the
// buckets, or the other way round.
func (h *Histogram) Snapshot() HistogramSnapshot {
	var s HistogramSnapshot
	var cum uint64
	for i := range h.buckets {
		cum += h.buckets[i].Load()
		if i < NumBounds {
			s.Counts[i] = cum
		}
	}
	s.Count = cum
	s.Sum = time.Duration(h.sum.Load())
	return s
}

// Status classes of Responses: index of the class of an HTTP status.
const (
	Class1xx = iota
	Class2xx
	Class3xx
	Class4xx
	Class5xx
	ClassOther
	NumClasses
)

// StatusClass returns the Class constant of an HTTP status.
func StatusClass(status int) int {
	if status < 100 || status > 599 {
		return ClassOther
	}
	return status/100 - 1
}

// Request is how one HTTP request ended, as a layer-7 proxy counted it
// while it ran; HTTPCounters.Record adds it to the shared counters.
type Request struct {
	// Status is the status sent to the client; 0 when none was.
	Status int
	// ProxyError is true when Fulcrum made the answer itself because no
	// real server answered (502, 503, 504, or the service's error
	// answer for 503).
	ProxyError bool
	// Aborted is true when the request ended without a complete answer.
	Aborted bool
	// ServerAbort is true when an aborted request was broken off by the
	// real server (it stopped answering, failed or timed out while its
	// answer was relayed); false when the client broke off.
	ServerAbort bool
	// Invalid is true when Fulcrum refused the request as malformed (too
	// large, incomplete or not received in time) with a 4xx answer.
	Invalid bool
	// Retries is the number of attempts beyond the first.
	Retries int
	// TTFB is the time from the request's head going out to the
	// response's head coming back; negative when no response was relayed.
	TTFB time.Duration
	// Duration is the request's total time.
	Duration time.Duration
}

// HTTPCounters are the request counters of a layer-7 service or SubVS.
// Every method is safe for concurrent use and never blocks; the zero
// value is ready.
type HTTPCounters struct {
	requests    atomic.Int64
	responses   [NumClasses]atomic.Int64
	proxyErrors atomic.Int64
	aborted     atomic.Int64
	retries     atomic.Int64
	clientAbort atomic.Int64
	serverAbort atomic.Int64
	invalid     atomic.Int64
	maxTTFB     atomic.Int64 // ns
	maxDuration atomic.Int64 // ns
	ttfb        Histogram
	duration    Histogram
	rate        meter // sampled by the accountant, never by the data path
}

// Sample updates the request rate from the growth of the requests since
// the previous Sample (about once a second, by one goroutine).
func (h *HTTPCounters) Sample(now time.Time) { h.rate.sample(now, h.requests.Load(), 0, 0) }

// Record counts one request that ended as r says.
func (h *HTTPCounters) Record(r *Request) {
	h.requests.Add(1)
	if r.Status != 0 {
		h.responses[StatusClass(r.Status)].Add(1)
	}
	if r.ProxyError {
		h.proxyErrors.Add(1)
	}
	if r.Aborted {
		h.aborted.Add(1)
		if r.ServerAbort {
			h.serverAbort.Add(1)
		} else {
			h.clientAbort.Add(1)
		}
	}
	if r.Invalid {
		h.invalid.Add(1)
	}
	if r.Retries > 0 {
		h.retries.Add(int64(r.Retries))
	}
	if r.TTFB >= 0 {
		h.ttfb.Observe(r.TTFB)
		storeMax(&h.maxTTFB, int64(r.TTFB))
	}
	h.duration.Observe(r.Duration)
	storeMax(&h.maxDuration, int64(r.Duration))
}

// HTTPSnapshot is HTTPCounters read at one moment.
type HTTPSnapshot struct {
	Requests    int64
	Responses   [NumClasses]int64
	ProxyErrors int64
	Aborted     int64
	Retries     int64
	// ClientAborts and ServerAborts split Aborted by who broke off.
	ClientAborts, ServerAborts int64
	// Invalid counts requests refused as malformed.
	Invalid int64
	// MaxTTFB and MaxDuration are the maxima since start.
	MaxTTFB, MaxDuration time.Duration
	// MaxRequestRate is the highest rate of requests over one second of
	// sampling; LastRequest about when the last request was counted (1 s
	// resolution), zero before the first.
	MaxRequestRate float64
	LastRequest    time.Time
	TTFB           HistogramSnapshot
	Duration       HistogramSnapshot
}

// Snapshot returns the counters.
func (h *HTTPCounters) Snapshot() HTTPSnapshot {
	s := HTTPSnapshot{
		Requests:     h.requests.Load(),
		ProxyErrors:  h.proxyErrors.Load(),
		Aborted:      h.aborted.Load(),
		Retries:      h.retries.Load(),
		ClientAborts: h.clientAbort.Load(),
		ServerAborts: h.serverAbort.Load(),
		Invalid:      h.invalid.Load(),
		MaxTTFB:      time.Duration(h.maxTTFB.Load()),
		MaxDuration:  time.Duration(h.maxDuration.Load()),
		TTFB:         h.ttfb.Snapshot(),
		Duration:     h.duration.Snapshot(),
	}
	for i := range h.responses {
		s.Responses[i] = h.responses[i].Load()
	}
	s.MaxRequestRate, s.LastRequest = h.rate.peaks()
	return s
}

// AddRequest counts an HTTP request (one attempt of it) sent to the
// server.
func (s *Server) AddRequest() { s.requests.Add(1) }

// AddResponse counts an answer of the server relayed to a client, by the
// class of its status.
func (s *Server) AddResponse(status int) { s.responses[StatusClass(status)].Add(1) }

// Requests returns the number of HTTP requests sent to the server.
func (s *Server) Requests() int64 { return s.requests.Load() }

// Responses returns the server's answers relayed to clients, by class
// (index Class1xx…ClassOther).
func (s *Server) Responses() [NumClasses]int64 {
	var r [NumClasses]int64
	for i := range s.responses {
		r[i] = s.responses[i].Load()
	}
	return r
}
