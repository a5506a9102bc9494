package dataplane

import (
	"log/slog"
	"sync"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/l4"
	"github.com/fulcrum-lb/fulcrum/internal/udp"
)

// drainer applies the drain and drop policy (see the package
// documentation) with one timer per service or real server being drained.
type drainer struct {
	log *slog.Logger
	l4  *l4.Proxy  // ends the connections of a drained service
	udp *udp.Proxy // ends its sessions

	mu sync.Mutex
	vs map[int]*time.Timer // by VS ID
	rs map[*backend.Server]*time.Timer
	on bool // false once stop stopped the timers
}

func newDrainer(log *slog.Logger, l4p *l4.Proxy, udpp *udp.Proxy) *drainer {
	return &drainer{log: log, l4: l4p, udp: udpp, vs: map[int]*time.Timer{}, rs: map[*backend.Server]*time.Timer{}, on: true}
}

// afterSwap applies the policy to what cur, the snapshot just put in
// force, took out of service compared with old, and cancels the drains of
// what it brought back.
func (d *drainer) afterSwap(old, cur *Snapshot) {
	opts := cur.options
	served := make(map[int]bool, len(cur.services))
	enabled := make(map[*backend.Server]bool, len(cur.services)*4)
	for _, s := range cur.services {
		if !s.served() {
			continue
		}
		served[s.vs.ID] = true
		for _, r := range s.allServers() {
			if isEnabled(r.rs.Enabled) {
				enabled[r.srv] = true
			}
		}
	}
	for _, s := range old.services {
		if !s.served() {
			continue
		}
		if !served[s.vs.ID] {
			d.service(s.vs.ID, opts)
			continue
		}
		for _, r := range s.allServers() {
			if isEnabled(r.rs.Enabled) && !enabled[r.srv] {
				d.serverOut(r.srv, "disabled or removed", opts.DropOnFail, opts.DrainTime, true)
			}
		}
	}
	d.mu.Lock()
	for id, t := range d.vs {
		if served[id] {
			t.Stop()
			delete(d.vs, id)
		}
	}
	for srv, t := range d.rs {
		if enabled[srv] && srv.Health() != backend.HealthDown {
			t.Stop()
			delete(d.rs, srv)
			srv.SetDraining(false)
		}
	}
	d.mu.Unlock()
}

// service ends the connections of a service taken out of service when the
// drain time ends.
func (d *drainer) service(id int, opts config.Options) {
	if opts.DrainTime <= 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.on || d.vs[id] != nil {
		return
	}
	d.vs[id] = time.AfterFunc(time.Duration(opts.DrainTime)*time.Second, func() {
		d.mu.Lock()
		t := d.vs[id]
		delete(d.vs, id)
		d.mu.Unlock()
		if t == nil {
			return // cancelled meanwhile
		}
		n := d.l4.CloseService(id) + d.udp.CloseService(id)
		d.log.Info("drain time of a removed virtual service ended", "id", id, "closed", n)
	})
}

// serverOut applies the policy to a real server taken out of service:
// drop its connections now, or when the drain time ends, or never. With
// mark, a server given a drain time is marked draining meanwhile, so its
// persisted clients keep coming to it.
func (d *drainer) serverOut(srv *backend.Server, why string, dropNow bool, drainTime int, mark bool) {
	if dropNow {
		n := srv.CloseConns()
		d.log.Info("real server connections dropped", "server", srv.Key().String(), "why", why, "closed", n)
		return
	}
	if drainTime <= 0 || srv.OpenConns() == 0 {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	if !d.on || d.rs[srv] != nil {
		return
	}
	if mark {
		srv.SetDraining(true)
	}
	d.rs[srv] = time.AfterFunc(time.Duration(drainTime)*time.Second, func() {
		d.mu.Lock()
		t := d.rs[srv]
		delete(d.rs, srv)
		d.mu.Unlock()
		if t == nil {
			return
		}
		srv.SetDraining(false)
		n := srv.CloseConns()
		d.log.Info("drain time of a real server ended", "server", srv.Key().String(), "why", why, "closed", n)
	})
}

// healthChanged applies the policy of opts to a real server whose health
// went from from to to.
func (d *drainer) healthChanged(s *backend.Server, from, to backend.Health, opts config.Options) {
	switch {
	case to == backend.HealthDown:
		drain := 0
		if opts.DropAtDrainEnd {
			drain = opts.DrainTime
		}
		s.Metrics().MarkUnavailable() // its return starts a new slow start
		d.serverOut(s, "health check Down", opts.DropOnFail, drain, false)
	case from == backend.HealthDown && s.Settings().Enabled:
		d.mu.Lock()
		if t := d.rs[s]; t != nil {
			t.Stop()
			delete(d.rs, s)
			s.SetDraining(false)
		}
		d.mu.Unlock()
	}
}

// stop stops every timer; the drainer starts none afterwards.
func (d *drainer) stop() {
	d.mu.Lock()
	defer d.mu.Unlock()
	d.on = false
	for _, t := range d.vs {
		t.Stop()
	}
	for _, t := range d.rs {
		t.Stop()
	}
}
