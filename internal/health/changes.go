package health

import (
	"fmt"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// change is a health write (backend.Server.SetHealth, which runs the data
// plane's hook) and OnChange call waiting to be made. They are made by one
// goroutine, in order, without the Monitor's lock.
type change struct {
	srv    *backend.Server // nil: none to write
	key    backend.Key
	h      backend.Health
	reason string
	notify bool   // call OnChange
	ev     *Event // call OnEvent with it
}

// record applies one check result to t. m.mu is held.
func (m *Monitor) record(t *task, res Result, at time.Time) {
	t.checks++
	t.lastCheck, t.latency, t.lastResult, t.lastUp = at, res.Latency, res.Reason, res.Up
	prev := t.health
	rise, retry := t.spec.Timers.RiseCount, t.spec.Timers.RetryCount
	// The first result of a check decides alone: a new real server is Up
	// or Down at once.
	first := t.checks == 1
	if res.Up {
		t.fails = 0
		t.oks++
		switch {
		case prev != backend.HealthDown || first:
			t.health, t.reason = backend.HealthUp, res.Reason
		case t.oks >= rise && rise > 1:
			t.health, t.reason = backend.HealthUp, fmt.Sprintf("%s (%d successes)", res.Reason, t.oks)
		case t.oks >= rise:
			t.health, t.reason = backend.HealthUp, res.Reason
		}
	} else {
		t.oks = 0
		t.fails++
		t.failed++
		switch {
		case first:
			t.health, t.reason = backend.HealthDown, res.Reason+" (first check)"
		case prev == backend.HealthUp && t.fails >= retry:
			t.health, t.reason = backend.HealthDown, fmt.Sprintf("%s after %d retries", res.Reason, t.fails)
		}
	}
	if t.health != prev {
		m.healthChanged(t, time.Now())
	}
}

// healthChanged writes t's new health to the real servers taking it and
// re-evaluates their service. m.mu is held.
func (m *Monitor) healthChanged(t *task, now time.Time) {
	var vs *vsState
	for _, s := range t.users {
		m.queueChange(change{srv: s.srv, key: s.key, h: t.health, reason: s.healthReason(), notify: s.health != t.health})
		s.health = t.health
		vs = s.vs
	}
	if vs != nil {
		m.evaluate(vs, now)
	}
}

// queueChange queues a health write and OnChange call. m.mu is held, so
// the queue has the order of the changes.
func (m *Monitor) queueChange(c change) {
	if c.srv == nil && (!c.notify || m.opts.OnChange == nil) && c.ev == nil {
		return
	}
	m.nmu.Lock()
	m.pending = append(m.pending, c)
	m.nmu.Unlock()
	select {
	case m.nwake <- struct{}{}:
	default:
	}
}

// notify is the goroutine that makes the OnChange calls.
func (m *Monitor) notify() {
	defer m.wg.Done()
	for {
		select {
		case <-m.ctx.Done():
			return
		case <-m.nwake:
		}
		m.nmu.Lock()
		batch := m.pending
		m.pending = nil
		m.nmu.Unlock()
		for _, c := range batch {
			if m.ctx.Err() != nil {
				return
			}
			if c.srv != nil {
				c.srv.SetHealth(c.h)
			}
			if c.notify && m.opts.OnChange != nil {
				m.opts.OnChange(c.key, c.h, c.reason)
			}
			if c.ev != nil {
				m.opts.OnEvent(*c.ev)
			}
		}
	}
}
