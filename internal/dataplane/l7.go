package dataplane

import (
	"fmt"

	"golang.org/x/time/rate"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/certs"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/l7"
	"github.com/fulcrum-lb/fulcrum/internal/l7/rules"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
)

// isL7 reports whether vs is served by the layer-7 proxy: tcp services of
// type http and http2. Types tls (STARTTLS) and gen stay layer 4.
func isL7(vs *config.VirtualService) bool {
	return vs.Protocol == "tcp" && (vs.Type == "http" || vs.Type == "http2")
}

// subVS is one SubVS of a layer-7 service in a generation.
type subVS struct {
	vs       *config.VirtualService
	label    string
	servers  []realServer
	picker   balance.Picker
	table    *persist.Table
	requests *backend.Counters
}

// l7Candidate is what compile prepares for the layer-7 services of a
// candidate generation.
type l7Candidate struct {
	store    *certs.Store
	rules    *rules.Set
	tickets  map[int]*certs.TicketKeys // by VS ID, for the next generation
	services map[int]*l7.Service       // by VS ID, for the next generation
	subStats map[int]*backend.Counters // request counters by SubVS ID
	created  []*l7.Service             // new Services, closed by rollback
}

// prepare parses the configuration's certificates and content rules, once
// per candidate.
func (lc *l7Candidate) prepare(cfg *config.Config) error {
	if lc.rules != nil {
		return nil
	}
	store, err := certs.NewStore(cfg.Certificates)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	set, err := rules.Compile(cfg.ContentRules)
	if err != nil {
		return fmt.Errorf("contentRules: %w", err)
	}
	lc.store, lc.rules = store, set
	return nil
}

// compileL7 builds the layer-7 Service of s (an http or http2 service
// whose own real servers and picker compileServed has set) and its SubVSs.
// An existing Service of the same VS ID is updated when the candidate is
// committed; a new one is created now and closed by rollback. It returns
// the number of enabled real servers of the SubVSs.
func (e *Engine) compileL7(cfg *config.Config, c *compiled, s *service, st *vsState) (int, error) {
	vs := s.vs
	lc := &c.l7
	if err := lc.prepare(cfg); err != nil {
		return 0, err
	}
	tickets := e.tickets[vs.ID]
	if tickets == nil {
		tickets = certs.NewTicketKeys(0)
	}
	lc.tickets[vs.ID] = tickets
	if st.requests == nil {
		st.requests = new(backend.Counters)
	}
	s.requests = st.requests
	if n := vs.Limits.RequestsPerSec; n > 0 {
		if st.reqRate == nil || st.reqRate.Limit() != rate.Limit(n) {
			st.reqRate = rate.NewLimiter(rate.Limit(n), n) // a burst of one second
		}
	} else {
		st.reqRate = nil
	}

	persisters := map[*config.VirtualService]*persist.Persister{}
	if p, ok := s.picker.(*persist.Persister); ok {
		persisters[vs] = p
	}
	stats := map[*config.VirtualService]*backend.Counters{vs: st.requests}
	enabled := 0
	b := &l7.Build{
		Config:  cfg,
		Rules:   lc.rules,
		Certs:   lc.store,
		Tickets: tickets,
		Servers: func(v *config.VirtualService) (balance.Picker, *backend.Server, error) {
			if v == vs {
				return s.picker, sorryServer(v), nil
			}
			sub, n, err := e.compileSubVS(cfg, c, s, v)
			if err != nil {
				return nil, nil, err
			}
			enabled += n
			if p, ok := sub.picker.(*persist.Persister); ok {
				persisters[v] = p
			}
			stats[v] = sub.requests
			return sub.picker, sorryServer(v), nil
		},
		Persist: func(v *config.VirtualService) l7.Persistence {
			if p := persisters[v]; p != nil {
				return l7.Persisted(p)
			}
			return nil
		},
		Stats: func(v *config.VirtualService) *backend.Counters { return stats[v] },
	}
	sc, err := b.BuildService(s.label, vs)
	if err != nil {
		return 0, err
	}
	// The pools count requests; the service counts client connections.
	sc.Stats = s.stats
	sc.MaxConns = e.maxConns(vs)
	sc.ConnRate = st.connRate
	sc.RequestRate = st.reqRate
	if sc.Pool == nil && len(sc.SubVSs) == 0 {
		return 0, fmt.Errorf("%s: %w", s.label, l7.ErrNoPool)
	}
	if svc := e.l7svcs[vs.ID]; svc != nil {
		s.l7 = svc
		c.commit = append(c.commit, func() {
			if err := svc.Update(sc); err != nil { // checked above: cannot fail
				e.log.Error("layer-7 service not updated", "service", s.label, "err", err)
			}
		})
	} else {
		svc, err := e.l7.Service(sc)
		if err != nil {
			return 0, fmt.Errorf("%s: %w", s.label, err)
		}
		s.l7 = svc
		lc.created = append(lc.created, svc)
	}
	lc.services[vs.ID] = s.l7
	return enabled, nil
}

// compileSubVS registers the real servers of SubVS v of s and builds its
// picker; it returns the SubVS and its number of enabled real servers.
func (e *Engine) compileSubVS(cfg *config.Config, c *compiled, s *service, v *config.VirtualService) (*subVS, int, error) {
	label := fmt.Sprintf("%s.subVSs[id=%d]", s.label, v.ID)
	if v.ID <= 0 {
		return nil, 0, fmt.Errorf("%s: SubVS id must be assigned before the service is served", s.label)
	}
	sub := &subVS{vs: v, label: label, servers: make([]realServer, len(v.RealServers))}
	sub.requests = e.subStats[v.ID]
	if sub.requests == nil {
		sub.requests = new(backend.Counters)
	}
	c.l7.subStats[v.ID] = sub.requests
	var all []*backend.Server
	enabled := 0
	for j := range v.RealServers {
		rs := &v.RealServers[j]
		sub.servers[j].rs = rs
		srv, err := e.lookupServer(c, label, v.ID, rs)
		if err != nil {
			return nil, 0, err
		}
		sub.servers[j].srv = srv
		all = append(all, srv)
		if isEnabled(rs.Enabled) {
			enabled++
		}
	}
	picker, _, table, err := e.newPicker(cfg, c, v, label, all)
	if err != nil {
		return nil, 0, err
	}
	sub.picker, sub.table = picker, table
	s.subs = append(s.subs, sub)
	return sub, enabled, nil
}

// lookupServer returns the registry's server for real server rs of the
// service or SubVS with ID vsID and records it in the candidate, changing
// its settings (restored by rollback).
func (e *Engine) lookupServer(c *compiled, label string, vsID int, rs *config.RealServer) (*backend.Server, error) {
	set := backend.Settings{ID: rs.ID, Weight: rs.Weight, Limit: rs.Limit, Enabled: isEnabled(rs.Enabled)}
	srv := e.backends.Lookup(backend.Key{VS: vsID, Address: rs.Address, Port: rs.Port}, set)
	if c.seen[srv] {
		return nil, fmt.Errorf("%s: duplicate real server %s port %d", label, rs.Address, rs.Port)
	}
	if old := srv.Settings(); old != set {
		c.restore = append(c.restore, func() { srv.Configure(old) })
		srv.Configure(set)
	}
	c.servers = append(c.servers, srv)
	c.seen[srv] = true
	return srv, nil
}

// sorryServer returns the sorry server of vs as a server of its own (not
// in the registry: it is not health checked), or nil.
func sorryServer(vs *config.VirtualService) *backend.Server {
	if vs.SorryServer == nil {
		return nil
	}
	return backend.NewServer(backend.Key{VS: vs.ID, Address: vs.SorryServer.Address, Port: vs.SorryServer.Port},
		backend.Settings{Enabled: true, Weight: 1})
}

// commitL7 puts the candidate's layer-7 services in force: Services that
// no VS uses any more are closed. Called with e.mu held.
func (e *Engine) commitL7(lc *l7Candidate) {
	for id, svc := range e.l7svcs {
		if lc.services[id] != svc {
			_ = svc.Close()
		}
	}
	e.l7svcs, e.tickets, e.subStats = lc.services, lc.tickets, lc.subStats
}

// l7Notes are the parts of a layer-7 service's Status reason about what
// the layer-7 proxy does not do yet.
func l7Notes(cfg *config.Config, vs *config.VirtualService, vip bool) []string {
	var out []string
	if !subnetOriginating(cfg, vs) && vip {
		out = append(out, "the layer-7 proxy connects to real servers from Fulcrum's own address on their subnet, not from the virtual service's")
	}
	if vs.Limits.Bandwidth > 0 {
		out = append(out, "the bandwidth limit is not applied by the layer-7 proxy")
	}
	if cfg.Options.ThroughputLimit > 0 {
		out = append(out, "the global throughput limit is not applied by the layer-7 proxy")
	}
	if vs.Persistence.Mode == persist.ModeSSL {
		out = append(out, "persistence ssl is not applied by the layer-7 proxy: requests are scheduled by "+scheduleName(vs))
	}
	return out
}
