package backend

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
	"weak"
)

// Metrics are measurements of a real server that the scheduling methods
// read and that health checks, proxies and the adaptive agent poller feed:
//
//   - response time (method dl): ObserveLatency after each successful health
//     check and, by the proxies, after each connection set-up or response;
//   - agent load in percent (method adaptive): SetLoad by the agent poller;
//   - the time since which the server is available (slow start):
//     MarkAvailable and MarkUnavailable, by pickers as they see the server
//     and, for a precise start, by the health checker on a Down→Up change.
//
// Every method is safe for concurrent use and never blocks. A Server's
// Metrics live as long as the Server (they survive reloads with it).
type Metrics struct {
	latency atomic.Int64 // EWMA of observed latencies in ns; 0 = none yet
	samples atomic.Int64
	load    atomic.Int32 // last agent report in percent; -1 = none
	loadAt  atomic.Int64 // unix ns of that report
	since   atomic.Int64 // unix ns since which the server is available; 0 = not (known to be) available
}

// metricsOf maps a Server to its Metrics. The key is a weak pointer, so the
// map does not keep a removed Server alive; a cleanup deletes the entry
// when the Server is collected. (Metrics hold no pointer to their Server.)
var metricsOf sync.Map // weak.Pointer[Server] → *Metrics

// Metrics returns the server's Metrics, creating them on first use.
// Callers on a hot path should keep the pointer rather than call this per
// operation.
func (s *Server) Metrics() *Metrics {
	wp := weak.Make(s)
	if m, ok := metricsOf.Load(wp); ok {
		return m.(*Metrics)
	}
	m := &Metrics{}
	m.load.Store(-1)
	if v, loaded := metricsOf.LoadOrStore(wp, m); loaded {
		return v.(*Metrics)
	}
	runtime.AddCleanup(s, func(wp weak.Pointer[Server]) { metricsOf.Delete(wp) }, wp)
	return m
}

// latencyShift sets the weight of a new latency sample in the moving
// average: 1/8, so the average follows a change within a few dozen samples
// without jumping on one outlier.
const latencyShift = 3

// ObserveLatency adds one response-time sample d (d ≤ 0 is ignored) to the
// exponentially weighted moving average read by Latency.
func (m *Metrics) ObserveLatency(d time.Duration) {
	if d <= 0 {
		return
	}
	x := int64(d)
	for {
		old := m.latency.Load()
		next := x
		if old != 0 {
			next = old + (x-old)>>latencyShift
			if next <= 0 {
				next = 1
			}
		}
		if m.latency.CompareAndSwap(old, next) {
			m.samples.Add(1)
			return
		}
	}
}

// Latency returns the moving average of the observed response times and
// whether there has been any sample.
func (m *Metrics) Latency() (time.Duration, bool) {
	v := m.latency.Load()
	return time.Duration(v), v != 0
}

// LatencyNanos is Latency in nanoseconds, 0 without samples, for pickers
// that read it on every pick.
func (m *Metrics) LatencyNanos() int64 { return m.latency.Load() }

// LatencySamples returns the number of latency samples observed.
func (m *Metrics) LatencySamples() int64 { return m.samples.Load() }

// SetLoad records a load report of the server's agent, in percent (0 idle,
// 100 overloaded; values outside 0-100 are clamped), made at time at.
func (m *Metrics) SetLoad(percent int, at time.Time) {
	m.load.Store(int32(min(max(percent, 0), 100)))
	m.loadAt.Store(at.UnixNano())
}

// ClearLoad forgets the last load report (the agent could not be read).
func (m *Metrics) ClearLoad() { m.load.Store(-1) }

// Load returns the last load report in percent and when it was made; ok is
// false when there is none.
func (m *Metrics) Load() (percent int, at time.Time, ok bool) {
	p := m.load.Load()
	if p < 0 {
		return 0, time.Time{}, false
	}
	return int(p), time.Unix(0, m.loadAt.Load()), true
}

// MarkAvailable records that the server is available at time now. If it
// was not known to be available (new, or marked unavailable since), its
// availability starts now and MarkAvailable reports true: a slow start
// begins. Otherwise it changes nothing and reports false.
func (m *Metrics) MarkAvailable(now time.Time) bool {
	if m.since.Load() != 0 {
		return false
	}
	t := now.UnixNano()
	if t == 0 {
		t = 1
	}
	return m.since.CompareAndSwap(0, t)
}

// MarkUnavailable records that the server is not available (down,
// disabled or draining): its next MarkAvailable starts a new slow start.
func (m *Metrics) MarkUnavailable() {
	if m.since.Load() != 0 {
		m.since.Store(0)
	}
}

// AvailableSince returns since when the server has been available, and
// false if it is not known to be available.
func (m *Metrics) AvailableSince() (time.Time, bool) {
	t := m.since.Load()
	if t == 0 {
		return time.Time{}, false
	}
	return time.Unix(0, t), true
}

// AvailableSinceNanos is AvailableSince as Unix nanoseconds (0: not known
// to be available), for pickers that compare it on every pick.
func (m *Metrics) AvailableSinceNanos() int64 { return m.since.Load() }
