package health

import (
	"context"
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"math/rand/v2"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// Options configure a Monitor.
type Options struct {
	// Logger receives transitions (Warn for Down and Sorry, Info for the
	// others); slog.Default when nil.
	Logger *slog.Logger
	// OnChange, when set, is called with every change of a real server's
	// health (Up, Down, or Unknown when the server stops being checked),
	// with the reason, right after the health is written to its
	// backend.Server. Calls come from one goroutine, in the order of the
	// changes, and never under the Monitor's lock, so OnChange may call the
	// Monitor. It must not block for long: later changes wait for it.
	OnChange func(key backend.Key, h backend.Health, reason string)
	// EventLogSize is the number of events kept; default 1000.
	EventLogSize int
	// MaxConcurrent bounds the checks in flight at once; default 1000. When
	// it is reached, due checks wait for a slot.
	MaxConcurrent int
	// PassiveFailures is the number of consecutive failures reported by
	// the proxies (ReportFailure) that mark a real server Down until its
	// active check passes again; 0 (the default) turns passive checks off.
	PassiveFailures int
	// RootCAs are the authorities trusted by checks with verifyTls; nil
	// means the system's.
	RootCAs *x509.CertPool
	// Unit is the length of one configured second; default time.Second.
	// Tests shorten it to run LoadMaster's timers (interval 9, timeout 4)
	// in a fraction of the time. Not for production use.
	Unit time.Duration
}

// ErrClosed is returned by Sync after Close.
var ErrClosed = errors.New("health: monitor closed")

// Monitor runs the health checks of a configuration and computes the
// statuses of its virtual services and real servers.
//
// One scheduler goroutine keeps every check in a heap ordered by due time
// and starts each due check on a goroutine of its own; a real server never
// has two checks in flight. Results become statuses and events at once;
// changes of health are written to the real server's backend.Server
// (SetHealth, which runs the data plane's hook) and passed to
// Options.OnChange by one more goroutine, in order and without the
// Monitor's lock.
//
// The methods are safe for concurrent use.
type Monitor struct {
	log    *slog.Logger
	opts   Options
	unit   time.Duration
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	wake   chan struct{} // wakes the scheduler
	epoch  time.Time     // due times are measured from it
	syncMu sync.Mutex    // serialises Sync

	mu       sync.Mutex
	closed   bool
	tasks    map[backend.Key]*task // by the checked real server's key
	queue    queue
	idle     []*worker // idle workers, the most recent last
	inFlight int
	nextWake time.Duration // when the scheduler wakes next; -1 when it waits for a signal
	services []*vsState    // configuration order, each SubVS after its parent
	servers  map[backend.Key]*rsState
	events   *eventLog

	passive atomic.Pointer[map[int]map[backend.Key]*task] // by service ID; nil when passive checks are off

	// Guarded by syncMu, and by mu too where apply writes them.
	forest []*tree             // the plans in force, in configuration order
	byID   map[int]*tree       // forest by service ID; nil after a configuration whose IDs repeat
	health config.HealthTimers // the global timers the forest was planned with
	gen    uint64              // counts the Syncs applied
	ids    map[int]struct{}    // scratch for plan

	nmu     sync.Mutex // guards pending; taken after mu when both are held
	pending []change
	nwake   chan struct{}
}

// change is a health write (backend.Server.SetHealth, which runs the data
// plane's hook) and OnChange call waiting to be made. They are made by one
// goroutine, in order, without the Monitor's lock.
type change struct {
	srv    *backend.Server // nil: none to write
	key    backend.Key
	h      backend.Health
	reason string
	notify bool // call OnChange
}

// task is the running check of one real server.
type task struct {
	key      backend.Key
	spec     Spec
	fp       string
	checker  Checker
	interval time.Duration
	timeout  time.Duration
	due      time.Duration // since the Monitor's epoch
	stopped  bool
	cancel   context.CancelFunc // of the check in flight; nil when none is

	health     backend.Health // Unknown until the first result
	reason     string         // why health is what it is
	fails, oks int            // consecutive
	checks     int
	lastCheck  time.Time
	latency    time.Duration
	lastResult string
	lastUp     bool
	users      []*rsState // the real servers taking this result: its own and its followers
	gen        uint64     // the last Sync that kept it in force

	passiveFails atomic.Int32
}

// New returns a Monitor that checks nothing until Sync.
func New(o Options) *Monitor {
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	if o.EventLogSize <= 0 {
		o.EventLogSize = 1000
	}
	if o.MaxConcurrent <= 0 {
		o.MaxConcurrent = 1000
	}
	if o.Unit <= 0 {
		o.Unit = time.Second
	}
	ctx, cancel := context.WithCancel(context.Background())
	m := &Monitor{
		log: o.Logger, opts: o, unit: o.Unit, ctx: ctx, cancel: cancel,
		wake:     make(chan struct{}, 1),
		epoch:    time.Now(),
		nextWake: -1,
		nwake:    make(chan struct{}, 1),
		tasks:    map[backend.Key]*task{},
		servers:  map[backend.Key]*rsState{},
		events:   newEventLog(o.EventLogSize),
	}
	m.wg.Add(1)
	go m.schedule()
	m.wg.Add(1)
	go m.notify()
	return m
}

// Close stops every check, waits for the Monitor's goroutines to end and
// drops OnChange calls not yet made. Sync fails after Close.
func (m *Monitor) Close() error {
	m.mu.Lock()
	if m.closed {
		m.mu.Unlock()
		return nil
	}
	m.closed = true
	for _, t := range m.tasks {
		m.stopTask(t)
	}
	m.mu.Unlock()
	m.cancel()
	m.wg.Wait()
	return nil
}

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
func (m *Monitor) Sync(cfg *config.Config, servers func(backend.Key) *backend.Server) error {
	if cfg == nil {
		return errors.New("health: nil configuration")
	}
	if servers == nil {
		servers = func(backend.Key) *backend.Server { return nil }
	}
	m.syncMu.Lock()
	defer m.syncMu.Unlock()
	plan, err := m.plan(cfg, servers)
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

// planned is a candidate configuration turned into states and wanted
// checks, built without the lock.
type planned struct {
	forest  []*tree       // every top-level service's plan, in configuration order
	changed []*tree       // the ones built by this Sync (the others are kept)
	updates []srvUpdate   // new data-plane servers of the kept ones
	byID    map[int]*tree // forest by service ID; nil when IDs repeat
	health  config.HealthTimers
}

// wanted is the check a real server should have.
type wanted struct {
	spec    Spec
	fp      string
	checker Checker
}

// plan builds the states and checks of cfg, with the data plane's servers.
// A top-level service unchanged since the last Sync (config.SameService)
// (and global timers unchanged) keeps its plan; only the data-plane
// servers of its real servers are looked up again. m.syncMu is held.
func (m *Monitor) plan(cfg *config.Config, servers func(backend.Key) *backend.Server) (*planned, error) {
	p := &planned{health: cfg.Options.Health}
	// Keys hold the service ID, so real servers of different services can
	// only collide when service IDs repeat (cfg not validated): then every
	// key is checked against every other and nothing is reused.
	if m.ids == nil {
		m.ids = map[int]struct{}{}
	}
	clear(m.ids)
	unique := true
	var count func(vs *config.VirtualService)
	count = func(vs *config.VirtualService) {
		if _, dup := m.ids[vs.ID]; dup {
			unique = false
		}
		m.ids[vs.ID] = struct{}{}
		for i := range vs.SubVSs {
			count(&vs.SubVSs[i])
		}
	}
	for i := range cfg.VirtualServices {
		count(&cfg.VirtualServices[i])
	}
	reuse := unique && m.byID != nil && cfg.Options.Health == m.health
	var keys map[backend.Key]*rsState // all of cfg's when IDs repeat
	if !unique {
		keys = map[backend.Key]*rsState{}
	}
	checkers := map[string]Checker{}
	var errs []error
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		if reuse {
			if old := m.byID[vs.ID]; old != nil && config.SameService(old.vs, vs) {
				p.forest = append(p.forest, old)
				for _, v := range old.services {
					for _, s := range v.servers {
						// s.srv is written by apply alone, under syncMu.
						if srv := servers(s.key); srv != s.srv {
							p.updates = append(p.updates, srvUpdate{s: s, srv: srv})
						}
					}
				}
				continue
			}
		}
		t := m.buildTree(cfg, vs, fmt.Sprintf("virtualServices[%d]", i), servers, keys, checkers, &errs)
		p.forest = append(p.forest, t)
		p.changed = append(p.changed, t)
	}
	if len(errs) > 0 {
		return nil, fmt.Errorf("health: %w", errors.Join(errs...))
	}
	switch {
	case reuse && len(p.changed) == 0 && len(p.forest) == len(m.forest):
		p.byID = m.byID // the same trees
	case unique:
		p.byID = make(map[int]*tree, len(p.forest))
		for _, t := range p.forest {
			p.byID[t.vs.ID] = t
		}
	}
	return p, nil
}

// buildTree plans vs and its SubVSs afresh. keys, when not nil, holds the
// real servers of the whole configuration, to find duplicates across
// services; otherwise duplicates are looked for within vs.
func (m *Monitor) buildTree(cfg *config.Config, top *config.VirtualService, path string,
	servers func(backend.Key) *backend.Server, keys map[backend.Key]*rsState, checkers map[string]Checker, errs *[]error) *tree {
	tr := &tree{vs: config.CloneService(top)}
	if keys == nil {
		keys = map[backend.Key]*rsState{}
	}
	checked := map[backend.Key]bool{}
	var walk func(vs *config.VirtualService, path string, parent *vsState)
	walk = func(vs *config.VirtualService, path string, parent *vsState) {
		v := newVSState(vs, parent)
		tr.services = append(tr.services, v)
		byID := make(map[int]*config.RealServer, len(vs.RealServers))
		for i := range vs.RealServers {
			byID[vs.RealServers[i].ID] = &vs.RealServers[i]
		}
		for i := range vs.RealServers {
			rs := &vs.RealServers[i]
			s := newRSState(v, rs)
			if _, dup := keys[s.key]; dup {
				*errs = append(*errs, fmt.Errorf("%s.realServers[%d]: duplicate real server %s", path, i, s.key))
				continue
			}
			keys[s.key] = s
			v.servers = append(v.servers, s)
			s.leaderCfg = leaderOf(rs, byID)
			s.srv = servers(s.key)
		}
		// A real server is checked when its service is enabled and checked
		// and it, or a real server following it, is enabled.
		if v.enabled && v.check != TypeNone {
			for i, s := range v.servers {
				if !s.enabled {
					continue
				}
				l := s.leaderCfg
				key := backend.Key{VS: vs.ID, Address: l.Address, Port: l.Port}
				if checked[key] {
					continue
				}
				spec := specFor(&cfg.Options, vs, l)
				spec.Params.RootCAs = m.opts.RootCAs
				pk := spec.paramsKey()
				c, ok := checkers[pk]
				if !ok {
					var err error
					if c, err = NewChecker(spec.Params); err != nil {
						*errs = append(*errs, fmt.Errorf("%s.healthCheck (real server %d): %w", path, i, err))
						continue
					}
					checkers[pk] = c
				}
				checked[key] = true
				tr.checks = append(tr.checks, keyedCheck{key: key, w: wanted{spec: spec, fp: spec.fingerprint(), checker: c}})
			}
		}
		for i := range vs.SubVSs {
			walk(&vs.SubVSs[i], fmt.Sprintf("%s.subVSs[%d]", path, i), v)
		}
	}
	walk(top, path, nil)
	return tr
}

// leaderOf follows rs's Follow chain to the real server whose check it
// takes. A chain that loops or leaves the service is ignored: rs is then
// checked itself.
func leaderOf(rs *config.RealServer, byID map[int]*config.RealServer) *config.RealServer {
	cur := rs
	for range len(byID) + 1 {
		if cur.Follow == 0 {
			return cur
		}
		next := byID[cur.Follow]
		if next == nil || next == rs {
			return rs
		}
		cur = next
	}
	return rs
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
				v.status, v.reason, v.since = o.status, o.reason, o.since
			}
			for _, s := range v.servers {
				l := s.leaderCfg
				if t := byKey[backend.Key{VS: s.key.VS, Address: l.Address, Port: l.Port}]; t != nil && s.enabled && s.vs.enabled {
					s.task = t
					t.users = append(t.users, s)
				}
				old := m.servers[s.key]
				if old != nil {
					s.status, s.reason, s.since, s.health = old.status, old.reason, old.since, old.health
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

// stopTask stops t: out of the queue, its check in flight cancelled and
// its result ignored. m.mu is held.
func (m *Monitor) stopTask(t *task) {
	t.stopped = true // a queued task is skipped when it comes out
	if t.cancel != nil {
		t.cancel()
	}
}

// signal wakes the scheduler.
func (m *Monitor) signal() {
	select {
	case m.wake <- struct{}{}:
	default:
	}
}

// schedule is the scheduler goroutine: it starts due checks.
func (m *Monitor) schedule() {
	defer m.wg.Done()
	timer := time.NewTimer(time.Hour)
	defer timer.Stop()
	// Waking up for every check costs more than the check itself at
	// thousands of real servers: the scheduler sleeps at least slack, and
	// starts together the checks due meanwhile.
	slack := min(m.unit/100, 10*time.Millisecond)
	for {
		m.mu.Lock()
		now := m.clock()
		wait := time.Duration(-1)
		for len(m.queue) > 0 && m.inFlight < m.opts.MaxConcurrent {
			if d := m.queue[0].due - now; d > 0 {
				wait = max(d, slack)
				break
			}
			if t := m.queue.pop().t; !t.stopped {
				m.start(t)
			}
		}
		if wait >= 0 {
			m.nextWake = now + wait
		} else {
			m.nextWake = -1 // until signalled
		}
		m.mu.Unlock()
		if wait >= 0 {
			timer.Reset(wait)
		} else {
			timer.Stop()
		}
		select {
		case <-m.ctx.Done():
			return
		case <-m.wake:
		case <-timer.C:
		}
	}
}

// start runs t's check on a worker. m.mu is held.
func (m *Monitor) start(t *task) {
	ctx, cancel := context.WithTimeout(m.ctx, t.timeout)
	t.cancel = cancel
	m.inFlight++
	checker, target := t.checker, t.spec.Target
	m.run(func() {
		start := time.Now()
		res := checker.Check(ctx, target)
		if res.Latency == 0 {
			res.Latency = time.Since(start)
		}
		cancel()
		m.mu.Lock()
		defer m.mu.Unlock()
		full := m.inFlight == m.opts.MaxConcurrent
		m.inFlight--
		t.cancel = nil
		if full {
			m.signal() // the scheduler may be waiting for this slot
		}
		if t.stopped {
			return
		}
		m.record(t, res, start)
		if t.checks == 1 {
			// Spread the checks over the interval: the second comes after
			// a random part of it, then one per interval.
			t.due = start.Sub(m.epoch) + t.interval/2 + rand.N(t.interval/2+1)
		} else {
			t.due += t.interval
		}
		t.due = max(t.due, m.clock())
		m.queue.push(t)
		if m.nextWake < 0 || t.due < m.nextWake {
			m.signal()
		}
	})
}

// workerIdle is how long a worker waits for a check before it ends.
const workerIdle = 10 * time.Second

// worker runs checks one after the other. Workers outlive their check, so
// that their stacks, grown by the first one, serve the next; the idle ones
// form a stack, so that the busiest stay and the others end.
type worker struct {
	jobs chan func() // holds at most the one job handed over by run
}

// run runs f on the most recently idle worker, or on a new one. m.mu is
// held.
func (m *Monitor) run(f func()) {
	if n := len(m.idle); n > 0 {
		w := m.idle[n-1]
		m.idle = m.idle[:n-1]
		w.jobs <- f // never blocks: an idle worker's buffer is empty
		return
	}
	w := &worker{jobs: make(chan func(), 1)}
	m.wg.Add(1)
	go m.work(w, f)
}

func (m *Monitor) work(w *worker, f func()) {
	defer m.wg.Done()
	idle := time.NewTimer(workerIdle)
	defer idle.Stop()
	for {
		f()
		m.mu.Lock()
		m.idle = append(m.idle, w)
		m.mu.Unlock()
		idle.Reset(workerIdle)
		select {
		case f = <-w.jobs:
			continue
		case <-idle.C:
		case <-m.ctx.Done():
		}
		m.mu.Lock()
		i := slices.Index(m.idle, w)
		if i >= 0 {
			m.idle = slices.Delete(m.idle, i, i+1)
		}
		m.mu.Unlock()
		if i >= 0 {
			return
		}
		f = <-w.jobs // run took this worker just now: its job is on the way
	}
}

// clock returns the time since the Monitor's epoch (monotonic).
func (m *Monitor) clock() time.Duration { return time.Since(m.epoch) }

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
	if c.srv == nil && (!c.notify || m.opts.OnChange == nil) {
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
		}
	}
}
