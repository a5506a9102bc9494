package webui

import (
	"sort"
	"sync"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/status"
)

// rsStatus is the data plane's status of one real server, with the state
// the UI shows for it.
type rsStatus struct{ status.RS }

// Display is the state the UI shows for a real server: the data plane's
// state, except that an enabled real server whose health check passes is
// Up (and one not checked stays Enabled: the UI never infers Up).
func (r rsStatus) Display() status.State {
	if r.State == status.Enabled && r.Health == status.Up {
		return status.Up
	}
	return r.State
}

// stateCount is how many real servers are in one state.
type stateCount struct {
	State status.State `json:"state"`
	N     int          `json:"n"`
}

// rsOrder is the order of the real-server states in counts; other states
// follow, by name.
var rsOrder = map[status.State]int{status.Up: 0, status.Enabled: 1, status.Draining: 2, status.Down: 3, status.Disabled: 4}

// rsCounts counts a service's real servers by state, in a stable order.
func rsCounts(v status.VS) []stateCount {
	m := map[status.State]int{}
	for _, rs := range v.RealServers {
		m[rsStatus{rs}.Display()]++
	}
	out := make([]stateCount, 0, len(m))
	for st, n := range m {
		out = append(out, stateCount{State: st, N: n})
	}
	sort.Slice(out, func(i, j int) bool {
		oi, ok := rsOrder[out[i].State]
		if !ok {
			oi = len(rsOrder)
		}
		oj, ok := rsOrder[out[j].State]
		if !ok {
			oj = len(rsOrder)
		}
		if oi != oj {
			return oi < oj
		}
		return out[i].State < out[j].State
	})
	return out
}

// statusByID reads the data plane's status, keyed by service ID (SubVSs
// have no status of their own yet).
func (s *Server) statusByID() map[int]status.VS {
	out := map[int]status.VS{}
	for _, v := range s.readStatus() {
		out[v.ID] = v
	}
	return out
}

// readStatus reads the data plane's status; nil without a data plane.
func (s *Server) readStatus() []status.VS {
	if s.status == nil {
		return nil
	}
	return s.status.Status()
}

// RespTime is the real server's response time for the page: rounded to
// the microsecond (10 µs above a millisecond), "–" before the first.
func (r rsStatus) RespTime() string {
	d := r.ResponseTime
	switch {
	case d <= 0:
		return "–"
	case d > time.Millisecond:
		return d.Round(10 * time.Microsecond).String()
	}
	return d.Round(time.Microsecond).String()
}

// rsStatusByID indexes a service's real-server status by ID.
func rsStatusByID(v status.VS) map[int]rsStatus {
	out := make(map[int]rsStatus, len(v.RealServers))
	for _, rs := range v.RealServers {
		out[rs.ID] = rsStatus{rs}
	}
	return out
}

// Metrics sampling. The UI keeps a short time series of the data plane's
// counters in memory, sampled when a browser asks for it (at most once a
// second), so no goroutine runs for it and several open dashboards share
// one series.
const (
	maxSamples     = 180 // 6 minutes at the dashboard's 2-second poll
	minSampleEvery = time.Second
)

// sample is one point of one series.
type sample struct {
	// Conns is the number of open connections.
	Conns int64
	// CPS is new connections per second since the previous sample.
	CPS float64
	// In is bits per second received from clients.
	In float64
	// Out is bits per second sent to clients.
	Out float64
}

type counters struct {
	total, in, out int64
}

// point is one sampling instant.
type point struct {
	t     time.Time
	total sample
	vs    map[int]sample
}

// sampler keeps the time series.
type sampler struct {
	mu     sync.Mutex
	max    int
	last   time.Time
	prev   map[int]counters
	points []point
}

func newSampler(max int) *sampler {
	return &sampler{max: max, prev: map[int]counters{}}
}

// observe records a sample of status at now unless the last one is more
// recent than minSampleEvery.
func (m *sampler) observe(now time.Time, list []status.VS) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.last.IsZero() && now.Sub(m.last) < minSampleEvery {
		return
	}
	dt := now.Sub(m.last).Seconds()
	first := m.last.IsZero()
	pt := point{t: now, vs: map[int]sample{}}
	next := map[int]counters{}
	for _, v := range list {
		c := counters{total: v.TotalConns, in: v.BytesIn, out: v.BytesOut}
		next[v.ID] = c
		sm := sample{Conns: v.ActiveConns}
		if p, ok := m.prev[v.ID]; ok && !first && dt > 0 {
			sm.CPS = rate(c.total-p.total, dt)
			sm.In = rate(c.in-p.in, dt) * 8
			sm.Out = rate(c.out-p.out, dt) * 8
		}
		pt.vs[v.ID] = sm
		pt.total.Conns += sm.Conns
		pt.total.CPS += sm.CPS
		pt.total.In += sm.In
		pt.total.Out += sm.Out
	}
	m.prev, m.last = next, now
	m.points = append(m.points, pt)
	if len(m.points) > m.max {
		m.points = append(m.points[:0:0], m.points[len(m.points)-m.max:]...)
	}
}

// rate is delta per second, never negative (a counter reset by a reload
// reads as 0, not as a negative rate).
func rate(delta int64, secs float64) float64 {
	if delta <= 0 {
		return 0
	}
	return float64(delta) / secs
}

// series is one service's (or the total's) columns, aligned with
// metricsDoc.T; a service absent at an instant has null there.
type series struct {
	Conns []*float64 `json:"conns"`
	CPS   []*float64 `json:"cps"`
	In    []*float64 `json:"in"`
	Out   []*float64 `json:"out"`
}

// metricsDoc is the JSON answer of /ui/metrics, shaped for uPlot: one time
// column (Unix seconds) and value columns.
type metricsDoc struct {
	// Revision is the configuration revision, so a page can reload itself
	// when services were added or removed.
	Revision uint64 `json:"revision"`
	// T are the sample times in Unix seconds.
	T []float64 `json:"t"`
	// Total is the sum over all services.
	Total series `json:"total"`
	// VS are the series of each service by ID.
	VS map[string]*series `json:"vs"`
	// Status is the current status of each service.
	Status []liveVS `json:"status"`
}

// liveVS is the current state of one service for the dashboard's badges.
type liveVS struct {
	ID       int          `json:"id"`
	State    status.State `json:"state"`
	StateCls string       `json:"stateCls"`
	Reason   string       `json:"reason"`
	Conns    int64        `json:"conns"`
	RS       []stateCount `json:"rs"`
}

func f64(v float64) *float64 { return &v }

// doc returns the time series as a metricsDoc.
func (m *sampler) doc() metricsDoc {
	m.mu.Lock()
	defer m.mu.Unlock()
	d := metricsDoc{T: make([]float64, 0, len(m.points)), VS: map[string]*series{}}
	ids := map[int]bool{}
	for _, p := range m.points {
		for id := range p.vs {
			ids[id] = true
		}
	}
	for id := range ids {
		d.VS[itoa(id)] = &series{}
	}
	for _, p := range m.points {
		d.T = append(d.T, float64(p.t.UnixMilli())/1000)
		appendSample(&d.Total, &p.total)
		for id := range ids {
			if sm, ok := p.vs[id]; ok {
				appendSample(d.VS[itoa(id)], &sm)
			} else {
				appendSample(d.VS[itoa(id)], nil)
			}
		}
	}
	return d
}

func appendSample(s *series, sm *sample) {
	if sm == nil {
		s.Conns, s.CPS, s.In, s.Out = append(s.Conns, nil), append(s.CPS, nil), append(s.In, nil), append(s.Out, nil)
		return
	}
	s.Conns = append(s.Conns, f64(float64(sm.Conns)))
	s.CPS = append(s.CPS, f64(sm.CPS))
	s.In = append(s.In, f64(sm.In))
	s.Out = append(s.Out, f64(sm.Out))
}
