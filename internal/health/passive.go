package health

import (
	"fmt"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// ReportFailure tells the Monitor that live traffic to real server key
// failed (a connection that could not be made, or a 5xx answer), with a
// short reason. When Options.PassiveFailures consecutive failures have
// been reported, the real server goes Down at once and stays Down until
// its active check passes again (RiseCount times). It does nothing when
// passive checks are off, for a real server that is not checked, or for
// one that follows another.
//
// It is cheap (an atomic load and add) and safe to call from the data path.
func (m *Monitor) ReportFailure(key backend.Key, reason string) {
	limit := m.opts.PassiveFailures
	if limit <= 0 {
		return
	}
	t := m.passiveTask(key)
	if t == nil || int(t.passiveFails.Add(1)) < limit {
		return
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	n := t.passiveFails.Swap(0)
	if t.stopped || t.health == backend.HealthDown || int(n) < limit {
		return
	}
	t.health, t.oks = backend.HealthDown, 0
	t.reason = fmt.Sprintf("passive: %d consecutive failures on live traffic, last: %s", n, reason)
	m.healthChanged(t, time.Now())
}

// ReportSuccess tells the Monitor that live traffic to real server key
// succeeded, which resets its count of consecutive failures. It is cheap
// and safe to call from the data path.
func (m *Monitor) ReportSuccess(key backend.Key) {
	if m.opts.PassiveFailures <= 0 {
		return
	}
	if t := m.passiveTask(key); t != nil && t.passiveFails.Load() != 0 {
		t.passiveFails.Store(0)
	}
}

// passiveTask returns the check of key itself, or nil.
func (m *Monitor) passiveTask(key backend.Key) *task {
	p := m.passive.Load()
	if p == nil {
		return nil
	}
	return (*p)[key.VS][key]
}
