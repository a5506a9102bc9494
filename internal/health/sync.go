package health

import (
	"errors"
	"maps"
	"slices"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Sync makes cfg, a validated configuration with IDs assigned, the one
// checked. servers returns the data plane's runtime state of a real
// server, or nil when it has none (the service is not served); it may be
// nil itself.
//
// A real server whose effective check (type, target, parameters, timers)
// is unchanged keeps its running check and state: no re-check, no false
// Up or Down. A changed check starts afresh with an immediate first check,
// as does a new real server; a removed one stops. Real servers that are
// not checked (type none, disabled, or in a disabled service) get health
// Unknown, which the data plane treats as available.
//
// Its cost follows what changed: a top-level service (with its SubVSs)
// whose check-relevant configuration (addresses, IDs, enabled, critical
// and follow flags, health check, sorry server; not weights, limits and
// the like) and the global timers are unchanged since the last Sync keeps
// its plan, and only the data plane's server of each of its real servers
// is looked up again (and written to when it is a new one).
//
// If a check cannot be built (cfg was not validated), Sync changes nothing
// and returns every problem with the field's path.
//
// Sync's checks carry no packet mark: it is SyncPlan without marks.
func (m *Monitor) Sync(cfg *config.Config, servers func(backend.Key) *backend.Server) error {
	return m.SyncPlan(cfg, servers, nil)
}

// SyncPlan is Sync with the packet marks of the services: marks returns
// the SO_MARK of a service's server-side connections (the mark of its own
// default gateway in the network plan, netcfg.Plan.Service(id).Mark), 0
// for none; marks may be nil (no marks). The sockets of the checks of a
// service's real servers carry its mark, so that a real server reachable
// only through the service's gateway is checked the way the service's
// traffic reaches it; a SubVS without a mark of its own uses its
// service's, as the data plane does. A changed mark is a changed check
// (it starts afresh), and a service whose mark (or a SubVS's) changed
// is planned anew.
func (m *Monitor) SyncPlan(cfg *config.Config, servers func(backend.Key) *backend.Server, marks func(vsID int) uint32) error {
	if cfg == nil {
		return errors.New("health: nil configuration")
	}
	if servers == nil {
		servers = func(backend.Key) *backend.Server { return nil }
	}
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	plan, err := m.plan(cfg, servers, marks)
	if err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.closed {
		return ErrClosed
	}
	m.apply(plan)
	return nil
}

// apply makes a plan the one in force. Kept trees stay as they are (only
// their new data-plane servers are written); the states and checks of
// the trees built anew take over those of the real servers they had
// before, and the trees no longer in force are dropped. m.mu is held.
func (m *Monitor) apply(p *planned) {
	now := time.Now()
	clock := m.clock()
	m.gen++
	gen := m.gen
	for _, tr := range p.forest {
		tr.gen = gen
	}
	// The services of the trees going out of force, for their statuses.
	var oldVS map[int]*vsState
	var dropped []*tree
	for _, tr := range m.forest {
		if tr.gen == gen {
			continue
		}
		dropped = append(dropped, tr)
		for _, v := range tr.services {
			if oldVS == nil {
				oldVS = map[int]*vsState{}
			}
			oldVS[v.id] = v
		}
	}

	// The checks of the new trees: kept when the check is unchanged.
	var created []*task
	for _, tr := range p.changed {
		tr.tasks = make([]*task, len(tr.checks))
		for i, c := range tr.checks {
			key, w := c.key, c.w
			if t := m.tasks[key]; t != nil && t.fp == w.fp {
				t.checker = w.checker // equal parameters; the new one is shared with the service's others
				t.users = t.users[:0]
				t.gen = gen
				tr.tasks[i] = t
				continue
			}
			interval, timeout := w.spec.Timers.durations(m.unit)
			t := &task{key: key, spec: w.spec, fp: w.fp, checker: w.checker, interval: interval, timeout: timeout, gen: gen}
			if old := m.servers[key]; old != nil && old.task != nil {
				// A changed check: the real server keeps its health until the
				// new check's first result, which decides alone (no false
				// Unknown in between).
				t.health, t.reason = old.health, old.task.reason
				t.failed = old.task.failed
			}
			tr.tasks[i] = t
			created = append(created, t)
		}
	}

	// The real servers of the new trees take their checks and the state
	// they had.
	for _, tr := range p.changed {
		var byKey map[backend.Key]*task
		if len(tr.tasks) > 0 {
			byKey = make(map[backend.Key]*task, len(tr.tasks))
			for _, t := range tr.tasks {
				byKey[t.key] = t
			}
		}
		for _, v := range tr.services {
			if o := oldVS[v.id]; o != nil {
				v.status, v.reason, v.since, v.upDown = o.status, o.reason, o.since, o.upDown
			}
			for _, s := range v.servers {
				l := s.leaderCfg
				if t := byKey[backend.Key{VS: s.key.VS, Address: l.Address, Port: l.Port}]; t != nil && s.enabled && s.vs.enabled {
					s.task = t
					t.users = append(t.users, s)
				}
				old := m.servers[s.key]
				if old != nil {
					s.status, s.reason, s.since, s.health, s.upDown = old.status, old.reason, old.since, old.health, old.upDown
				}
				h := s.taskHealth()
				// Written every time: the data plane may have a new *Server
				// for a real server whose health did not change.
				m.queueChange(change{srv: s.srv, key: s.key, h: h, reason: s.healthReason(), notify: old != nil && old.health != h})
				s.health = h
			}
		}
	}

	// Out with the dropped trees' real servers and checks not taken over.
	for _, tr := range dropped {
		for _, v := range tr.services {
			for _, s := range v.servers {
				if m.servers[s.key] == s {
					delete(m.servers, s.key)
				}
			}
		}
		for _, t := range tr.tasks {
			if t.gen != gen {
				m.stopTask(t)
				if m.tasks[t.key] == t {
					delete(m.tasks, t.key)
				}
			}
		}
	}
	for _, tr := range p.changed {
		for _, v := range tr.services {
			for _, s := range v.servers {
				m.servers[s.key] = s
			}
		}
		for _, t := range tr.tasks {
			m.tasks[t.key] = t
		}
	}

	// First checks are immediate, but a burst of new checks (a start with
	// thousands of real servers) is spread at most 1 ms apart.
	for i, t := range created {
		step := min(t.interval/time.Duration(len(created)), time.Millisecond)
		t.due = clock + time.Duration(i)*step
		m.queue.push(t)
	}

	// The kept trees' real servers with a new data-plane server.
	var last *vsState
	for _, u := range p.updates {
		s := u.s
		s.srv = u.srv
		m.queueChange(change{srv: s.srv, key: s.key, h: s.health, reason: s.healthReason()})
		if s.vs != last {
			last = s.vs
			m.evaluate(s.vs, now)
		}
	}

	if len(p.changed) > 0 || len(dropped) > 0 || !slices.Equal(p.forest, m.forest) {
		m.services = m.services[:0:0]
		for _, tr := range p.forest {
			m.services = append(m.services, tr.services...)
		}
		for _, tr := range p.changed {
			for _, v := range tr.services {
				m.evaluate(v, now)
			}
		}
		m.storePassive(p, dropped)
	}
	m.forest, m.byID, m.health = p.forest, p.byID, p.health
	m.signal()
}

// storePassive publishes the checks for ReportFailure when passive checks
// are on: a new map of services, sharing the maps of the services of the
// kept trees. m.mu is held.
func (m *Monitor) storePassive(p *planned, dropped []*tree) {
	if m.opts.PassiveFailures <= 0 {
		return
	}
	pm := map[int]map[backend.Key]*task{}
	if old := m.passive.Load(); old != nil && p.byID != nil {
		pm = maps.Clone(*old)
		for _, tr := range dropped {
			for _, v := range tr.services {
				delete(pm, v.id)
			}
		}
	}
	if p.byID == nil {
		// Service IDs repeat: every map is built anew.
		for _, tr := range p.forest {
			for _, v := range tr.services {
				delete(pm, v.id)
			}
		}
		p.changed = p.forest
	}
	for _, tr := range p.changed {
		for _, v := range tr.services {
			if _, ok := pm[v.id]; !ok {
				pm[v.id] = map[backend.Key]*task{}
			}
		}
		for _, t := range tr.tasks {
			pm[t.key.VS][t.key] = t
		}
	}
	m.passive.Store(&pm)
}
