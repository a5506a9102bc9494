package runtime

import (
	"bytes"
	"fmt"
	"strings"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/health"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
)

// compilePicker builds the picker of a served service over all of its
// real servers (pickers skip disabled, Down and draining ones at pick
// time, so a draining server still keeps its persisted clients), with the
// global slow start and adaptive settings, and wraps it in a Persister
// when the service persists. The picker's background work ends with the
// candidate's context.
func (e *Engine) compilePicker(cfg *config.Config, c *compiled, s *service, all []*backend.Server) error {
	picker, p, table, err := e.newPicker(cfg, c, s.vs, s.label, all)
	if err != nil {
		return err
	}
	s.picker, s.table = picker, table
	if p != nil && s.vs.Persistence.Mode == persist.ModeUDPSIP && s.vs.Protocol == "udp" {
		s.picker = sipPicker{p}
	}
	return nil
}

// newPicker builds the picker of a service or SubVS vs over all (see
// compilePicker). When vs persists, the picker is the returned Persister
// and table its persistence table.
func (e *Engine) newPicker(cfg *config.Config, c *compiled, vs *config.VirtualService, label string, all []*backend.Server) (balance.Picker, *persist.Persister, *persist.Table, error) {
	o := cfg.Options
	inner, err := balance.NewWithOptions(vs.Schedule, all, balance.Options{
		SlowStart: time.Duration(o.SlowStart) * time.Second,
		Adaptive: balance.Adaptive{
			URL:        o.Adaptive.URL,
			Port:       o.Adaptive.Port,
			Interval:   time.Duration(o.Adaptive.Interval) * time.Second,
			MinPercent: o.Adaptive.MinPercent,
		},
		Context: c.ctx,
		Logger:  e.log,
		Observe: e.passiveHook(cfg),
	})
	if err != nil {
		return nil, nil, nil, fmt.Errorf("%s: schedule: %w", label, err)
	}
	if vs.Schedule == "dl" {
		c.dl = true
	}
	mode := vs.Persistence.Mode
	if mode == "" || mode == persist.ModeNone {
		return inner, nil, nil, nil
	}
	always, err := persist.ParseAlways(o.AlwaysPersist)
	if err != nil {
		closePicker(inner)
		return nil, nil, nil, fmt.Errorf("options.alwaysPersist: %w", err)
	}
	tableID := vs.ID
	if vs.FollowVSID > 0 {
		tableID = vs.FollowVSID
	}
	table := e.tables.Table(tableID, 0)
	p, err := persist.New(inner, all, table, persist.Settings{
		Mode:     mode,
		Timeout:  time.Duration(vs.Persistence.Timeout) * time.Second,
		Refresh:  vs.Persistence.Refresh,
		Name:     vs.Persistence.Cookie,
		QueryTag: vs.Persistence.QueryTag,
		Mask:     vs.Persistence.Mask,
		Mask6:    vs.Persistence.Mask6,
		Always:   always,
		Secret:   e.secret,
	})
	if err != nil {
		closePicker(inner)
		return nil, nil, nil, fmt.Errorf("%s: persistence: %w", label, err)
	}
	c.tables = append(c.tables, tableID)
	return p, p, table, nil
}

// sipPicker is the Persister of a udpsip service: the UDP proxy hands it
// the header of the session's first datagram as Request.HashKey (see
// sipHashKey), which it passes on as the SIP message; the scheduling
// method behind it hashes the Call-ID.
type sipPicker struct{ *persist.Persister }

// Pick implements balance.Picker.
func (p sipPicker) Pick(req *balance.Request) (*backend.Server, func(balance.Outcome), error) {
	in := persist.Input{Request: *req}
	in.Request.HashKey = ""
	if req.HashKey != "" {
		in.SIP = []byte(req.HashKey)
		if id, err := persist.CallID(in.SIP); err == nil {
			in.Request.HashKey = string(id)
		}
	}
	return p.PickInput(&in)
}

// sipHashKey is the udp.ServiceConfig.HashKey of udpsip services: the
// header of a SIP datagram that has a Call-ID (what persist.CallID
// reads), or "" for anything else, which is then scheduled without
// persistence on a Call-ID.
func sipHashKey(p []byte) string {
	if i := bytes.Index(p, []byte("\r\n\r\n")); i >= 0 {
		p = p[:i+4]
	}
	if _, err := persist.CallID(p); err != nil {
		return ""
	}
	return string(p)
}

// persistNotes explain, in a served service's Status reason, what its
// persistence mode cannot do where it is served.
func persistNotes(vs *config.VirtualService) []string {
	mode := vs.Persistence.Mode
	switch {
	case mode == "" || mode == persist.ModeNone:
		return nil
	case persist.NeedsHTTP(mode):
		n := fmt.Sprintf("persistence %s needs the layer-7 proxy", mode)
		if strings.HasSuffix(mode, "-src") {
			n += ": only its source-address part applies"
		}
		return []string{n}
	case mode == persist.ModeSSL:
		return []string{"persistence ssl needs the TLS session ID of the ClientHello, which the layer-4 proxy does not read: connections are scheduled by " + scheduleName(vs)}
	case mode == persist.ModeUDPSIP && vs.Protocol != "udp":
		return []string{"persistence udpsip applies to udp services: connections are scheduled by " + scheduleName(vs)}
	}
	return nil
}

// scheduleName is the method a service is scheduled by, for messages.
func scheduleName(vs *config.VirtualService) string {
	if !balance.Implemented(vs.Schedule) {
		return balance.FallbackMethod
	}
	return vs.Schedule
}

// passiveHook returns the pickers' balance.Options.Observe of passive
// health checks, or nil when cfg turns them off: the outcomes the proxies
// report to the pickers' done funcs (layer-4 dials, layer-7 attempts) go
// to the monitor in force at each call.
func (e *Engine) passiveHook(cfg *config.Config) func(*backend.Server, balance.Outcome) {
	if cfg.Options.Health.PassiveFailures <= 0 {
		return nil
	}
	return func(srv *backend.Server, o balance.Outcome) {
		m := e.mon.Load()
		if o.Err != nil {
			m.ReportFailure(srv.Key(), o.Err.Error())
			return
		}
		m.ReportSuccess(srv.Key())
	}
}

// syncHealth gives the configuration just applied to the health monitor,
// in the background: planning the checks of 10,000 real servers takes
// longer than compiling them, and the data plane already serves cfg, so
// Apply does not wait for it. One goroutine at a time syncs the newest
// configuration handed over (older ones not yet synced are skipped), and
// every reader of the monitor's state (Health, Status, Events) and Close
// first wait for it to finish (flushHealth), so they see the monitor
// synced with the configuration in force, as if Apply had synced it.
// Called with e.mu held.
func (e *Engine) syncHealth(cfg *config.Config) {
	e.healthMu.Lock()
	defer e.healthMu.Unlock()
	e.healthNext = cfg
	if !e.healthBusy {
		e.healthBusy = true
		go e.healthWorker()
	}
}

// healthWorker syncs the monitor with the newest configuration handed to
// syncHealth until there is none left.
func (e *Engine) healthWorker() {
	for {
		e.healthMu.Lock()
		cfg := e.healthNext
		e.healthNext = nil
		if cfg == nil {
			e.healthBusy = false
			e.healthIdle.Broadcast()
			e.healthMu.Unlock()
			return
		}
		e.healthMu.Unlock()
		e.syncHealthNow(cfg)
	}
}

// flushHealth waits until the monitor is synced with the last
// configuration handed to syncHealth.
func (e *Engine) flushHealth() {
	e.healthMu.Lock()
	for e.healthBusy {
		e.healthIdle.Wait()
	}
	e.healthMu.Unlock()
}

// syncHealthNow syncs the monitor with cfg. The monitor's passive failure
// count is fixed when it is created, so a change of
// options.health.passiveFailures replaces it: its checks start afresh.
// Called by the one running healthWorker.
func (e *Engine) syncHealthNow(cfg *config.Config) {
	n := cfg.Options.Health.PassiveFailures
	m := e.mon.Load()
	if n != e.passive {
		o := e.healthOpts
		o.PassiveFailures = n
		nm := health.New(o)
		_ = m.Close()
		e.log.Info("health checks restarted: passive failure count changed", "passiveFailures", n)
		e.mon.Store(nm)
		e.passive = n
		m = nm
	}
	if err := m.Sync(cfg, e.Server); err != nil {
		e.log.Error("health checks not updated", "err", err)
	}
}

// Health returns the status of the health checks of every service and
// SubVS of the configuration in force.
func (e *Engine) Health() []health.VSStatus {
	e.flushHealth()
	return e.mon.Load().Status()
}

// Events returns at most limit of the newest health-check events (all
// kept when limit <= 0), newest first, of service vsID (of all when 0).
// It never returns nil.
func (e *Engine) Events(limit, vsID int) []health.Event {
	e.flushHealth()
	ev := e.mon.Load().Events(limit, vsID)
	if ev == nil {
		ev = []health.Event{}
	}
	return ev
}

// PersistStats returns the size and counters of every persistence table.
func (e *Engine) PersistStats() []persist.Stats { return e.tables.Stats() }

// feedLatency gives the latency of each new passed health check of the
// real servers of dl services to their metrics (the response time dl
// schedules by). seen holds the time of the last check fed per server.
// Called by the loop once a second.
func (e *Engine) feedLatency(seen map[backend.Key]time.Time) {
	snap := e.snap.Load()
	m := e.mon.Load()
	if !snap.dl {
		clear(seen)
		return
	}
	dl := map[int]*service{}
	for _, s := range snap.services {
		if s.served() && s.vs.Schedule == "dl" {
			dl[s.vs.ID] = s
		}
	}
	live := make(map[backend.Key]bool, len(seen))
	for _, vs := range m.Status() {
		s := dl[vs.ID]
		if s == nil {
			continue
		}
		for _, rs := range vs.RealServers {
			k := backend.Key{VS: vs.ID, Address: rs.Address, Port: rs.Port}
			live[k] = true
			if !rs.LastUp || rs.LastCheck.IsZero() || !rs.LastCheck.After(seen[k]) {
				continue
			}
			seen[k] = rs.LastCheck
			if srv := e.backends.Get(k); srv != nil {
				srv.Metrics().ObserveLatency(rs.Latency)
			}
		}
	}
	for k := range seen {
		if !live[k] {
			delete(seen, k)
		}
	}
}
