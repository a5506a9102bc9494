package dataplane

import (
	"sync"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/l4"
	"github.com/fulcrum-lb/fulcrum/internal/status"
)

// procMeter turns the process-wide totals (connections, TLS handshakes)
// into per-second rates and keeps their maxima. The accountant samples it
// once a second; readers take its lock, the data path never does.
type procMeter struct {
	mu   sync.Mutex
	at   time.Time
	prev [numProcRates]int64
	cur  [numProcRates]float64
	max  [numProcRates]float64
}

// The rates a procMeter keeps.
const (
	rateConns      = iota // client connections accepted (all services)
	rateTLS               // TLS handshakes with clients
	rateClientKeys        // full (not resumed) TLS handshakes with clients
	rateServerKeys        // full TLS handshakes with real servers
	numProcRates
)

func (m *procMeter) sample(now time.Time, totals [numProcRates]int64) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if !m.at.IsZero() {
		if d := now.Sub(m.at).Seconds(); d > 0 {
			for i := range totals {
				m.cur[i] = max(float64(totals[i]-m.prev[i]), 0) / d
				m.max[i] = max(m.max[i], m.cur[i])
			}
		}
	}
	m.at, m.prev = now, totals
}

// processTotals returns the totals a procMeter samples.
func (e *Engine) processTotals() [numProcRates]int64 {
	var t [numProcRates]int64
	for _, s := range e.snap.Load().services {
		t[rateConns] += s.stats.Total()
	}
	ts := e.l7.TLSStats()
	t[rateTLS] = ts.ClientHandshakes
	t[rateClientKeys] = ts.ClientHandshakes - ts.ClientResumed
	t[rateServerKeys] = ts.ServerFullHandshakes
	return t
}

// process returns the process-wide counters of the status model.
func (e *Engine) process() status.Process {
	ts := e.l7.TLSStats()
	p := status.Process{
		TLSHandshakes: ts.ClientHandshakes, TLSResumed: ts.ClientResumed, TLSConns: ts.ClientOpen,
		SplicedBytes: l4.SplicedBytes(), Listeners: len(e.listeners.Keys()),
	}
	m := &e.proc
	m.mu.Lock()
	p.ConnRate, p.MaxConnRate = m.cur[rateConns], m.max[rateConns]
	p.TLSRate, p.MaxTLSRate = m.cur[rateTLS], m.max[rateTLS]
	p.ClientKeyRate, p.MaxClientKeyRate = m.cur[rateClientKeys], m.max[rateClientKeys]
	p.ServerKeyRate, p.MaxServerKeyRate = m.cur[rateServerKeys], m.max[rateServerKeys]
	m.mu.Unlock()
	return p
}
