package dataplane

import (
	"log/slog"
	"sync"
	"sync/atomic"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/health"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
)

// healthSync owns the Engine's health.Monitor and keeps it synced with
// the configuration in force, in the background: planning the checks of
// 10,000 real servers takes longer than compiling them, and the data
// plane already serves the configuration, so Apply does not wait for it.
// One goroutine at a time syncs the newest configuration handed over
// (older ones not yet synced are skipped), and every reader of the
// monitor's state (Engine.Health, Status, Events, SetHealth) and Close
// first wait for it to finish (flush), so they see the monitor synced
// with the configuration in force, as if Apply had synced it.
type healthSync struct {
	opts     health.Options
	log      *slog.Logger
	backends *backend.Registry
	mon      atomic.Pointer[health.Monitor] // replaced when passiveFailures changes

	mu      sync.Mutex
	idle    *sync.Cond     // signalled when busy turns false
	next    *config.Config // the configuration to sync next, or nil
	plan    *netcfg.Plan   // next's network plan
	busy    bool           // a worker runs
	passive int            // PassiveFailures of mon; used by the worker only
}

// newHealthSync returns a healthSync whose monitor checks the real
// servers of backends, with passive checks off until a configuration
// turns them on.
func newHealthSync(o health.Options, backends *backend.Registry) *healthSync {
	h := &healthSync{opts: o, log: o.Logger, backends: backends}
	h.idle = sync.NewCond(&h.mu)
	h.mon.Store(health.New(o))
	return h
}

// monitor returns the monitor in force.
func (h *healthSync) monitor() *health.Monitor { return h.mon.Load() }

// sync hands cfg, the configuration just applied, and p, its network
// plan, to the monitor in the background. Called with Engine.mu held.
func (h *healthSync) sync(cfg *config.Config, p *netcfg.Plan) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.next, h.plan = cfg, p
	if !h.busy {
		h.busy = true
		go h.worker()
	}
}

// worker syncs the monitor with the newest configuration handed to sync
// until there is none left.
func (h *healthSync) worker() {
	for {
		h.mu.Lock()
		cfg, p := h.next, h.plan
		h.next, h.plan = nil, nil
		if cfg == nil {
			h.busy = false
			h.idle.Broadcast()
			h.mu.Unlock()
			return
		}
		h.mu.Unlock()
		h.syncNow(cfg, p)
	}
}

// flush waits until the monitor is synced with the last configuration
// handed to sync.
func (h *healthSync) flush() {
	h.mu.Lock()
	for h.busy {
		h.idle.Wait()
	}
	h.mu.Unlock()
}

// syncNow syncs the monitor with cfg and the marks of p: the checks of a
// service whose plan entry has a Mark carry it, as its server-side
// connections do, so they take the route of the service's own default
// gateway. The monitor's passive failure count is fixed when it is
// created, so a change of options.health.passiveFailures replaces it: its
// checks start afresh. Called by the one running worker.
func (h *healthSync) syncNow(cfg *config.Config, p *netcfg.Plan) {
	n := cfg.Options.Health.PassiveFailures
	m := h.mon.Load()
	if n != h.passive {
		o := h.opts
		o.PassiveFailures = n
		nm := health.New(o)
		_ = m.Close()
		h.log.Info("health checks restarted: passive failure count changed", "passiveFailures", n)
		h.mon.Store(nm)
		h.passive = n
		m = nm
	}
	if err := m.SyncPlan(cfg, h.backends.Get, planMarks(p)); err != nil {
		h.log.Error("health checks not updated", "err", err)
	}
}

// planMarks returns the packet mark of a service in p, or nil when p
// marks no service.
func planMarks(p *netcfg.Plan) func(vsID int) uint32 {
	if p == nil {
		return nil
	}
	for _, s := range p.Services {
		if s.Mark != 0 {
			return func(id int) uint32 { return p.Service(id).Mark }
		}
	}
	return nil
}

// close stops the monitor; call flush first.
func (h *healthSync) close() error {
	if m := h.mon.Load(); m != nil {
		return m.Close()
	}
	return nil
}

// observer returns the pickers' balance.Options.Observe of passive health
// checks, or nil when cfg turns them off: the outcomes the proxies report
// to the pickers' done funcs (layer-4 dials, layer-7 attempts) go to the
// monitor in force at each call.
func (h *healthSync) observer(cfg *config.Config) func(*backend.Server, balance.Outcome) {
	if cfg.Options.Health.PassiveFailures <= 0 {
		return nil
	}
	return h.report
}

// report reports the outcome of an attempt on srv to the monitor.
func (h *healthSync) report(srv *backend.Server, o balance.Outcome) {
	m := h.mon.Load()
	if o.Err != nil {
		m.ReportFailure(srv.Key(), o.Err.Error())
		return
	}
	m.ReportSuccess(srv.Key())
}
