package dataplane

import (
	"fmt"
	"log/slog"
	"time"

	"golang.org/x/time/rate"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
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
	http     *backend.HTTPCounters
}

// l7Driver serves http and http2 services, with their SubVSs, with the
// l7.Proxy. One l7.Service per virtual service lives across reloads:
// a changed service has its routing swapped by the commit, an unchanged
// one is kept as it is, with its connections to real servers.
type l7Driver struct {
	proxy *l7.Proxy
	log   *slog.Logger
	// The layer-7 state that outlives a generation, replaced by commit
	// (with Engine.mu held): Services and session ticket keys by VS ID,
	// request counters by SubVS ID.
	svcs     map[int]*l7.Service
	tickets  map[int]*certs.TicketKeys
	subStats map[int]*backend.Counters
	subHTTP  map[int]*backend.HTTPCounters
	// accessLog receives the entries of services with accessLog; nil: off.
	accessLog accesslog.Logger
}

func newL7Driver(p *l7.Proxy, log *slog.Logger, al accesslog.Logger) *l7Driver {
	return &l7Driver{proxy: p, log: log, svcs: map[int]*l7.Service{}, tickets: map[int]*certs.TicketKeys{},
		subStats: map[int]*backend.Counters{}, subHTTP: map[int]*backend.HTTPCounters{}, accessLog: al}
}

func (d *l7Driver) serves(vs *config.VirtualService) bool { return isL7(vs) }

func (d *l7Driver) network() string { return "tcp" }

// idleTimeout is the service's idle time, else options.connTimeout, else
// l7.DefaultIdleTimeout.
func (d *l7Driver) idleTimeout(cfg *config.Config, vs *config.VirtualService) time.Duration {
	idle := vs.Idletime
	if idle == 0 {
		idle = cfg.Options.ConnTimeout
	}
	if idle == 0 {
		return l7.DefaultIdleTimeout
	}
	return time.Duration(idle) * time.Second
}

func (d *l7Driver) begin(c *compiled) build {
	return &l7Build{
		d:        d,
		cfg:      c.cfg,
		prev:     c.prev,
		tickets:  map[int]*certs.TicketKeys{},
		services: map[int]*l7.Service{},
		subStats: map[int]*backend.Counters{},
		subHTTP:  map[int]*backend.HTTPCounters{},
	}
}

// l7Build is what compile prepares for the layer-7 services of a
// candidate generation.
type l7Build struct {
	d         *l7Driver
	cfg, prev *config.Config
	store     *certs.Store              // parsed by the first compile
	rules     *rules.Set                // the same
	tickets   map[int]*certs.TicketKeys // by VS ID, for the next generation
	services  map[int]*l7.Service       // by VS ID, for the next generation
	subStats  map[int]*backend.Counters // request counters by SubVS ID
	subHTTP   map[int]*backend.HTTPCounters
	created   []*l7.Service // new Services, closed by rollback
	updates   []l7Update    // Services in force given a new configuration by commit
}

// l7Update is a Service in force and the configuration commit gives it.
type l7Update struct {
	svc   *l7.Service
	cfg   l7.ServiceConfig
	label string
}

// prepare parses the configuration's certificates and content rules, once
// per candidate.
func (b *l7Build) prepare() error {
	if b.rules != nil {
		return nil
	}
	store, err := certs.NewStore(b.cfg.Certificates)
	if err != nil {
		return fmt.Errorf("certificates: %w", err)
	}
	set, err := rules.Compile(b.cfg.ContentRules)
	if err != nil {
		return fmt.Errorf("contentRules: %w", err)
	}
	b.store, b.rules = store, set
	return nil
}

// compile builds the layer-7 Service of s (an http or http2 service whose
// own real servers and picker compileServed has set) and its SubVSs. An
// existing Service of the same VS ID is updated when the candidate is
// committed; a new one is created now and closed by rollback.
func (b *l7Build) compile(c *compiled, s *service, st *vsState) error {
	vs := s.vs
	if err := b.prepare(); err != nil {
		return err
	}
	tickets := b.d.tickets[vs.ID]
	if tickets == nil {
		tickets = certs.NewTicketKeys(0)
	}
	b.tickets[vs.ID] = tickets
	if st.requests == nil {
		st.requests = new(backend.Counters)
	}
	if st.http == nil {
		st.http = new(backend.HTTPCounters)
	}
	s.requests, s.http = st.requests, st.http
	if n := vs.Limits.RequestsPerSec; n > 0 {
		if st.reqRate == nil || st.reqRate.Limit() != rate.Limit(n) {
			st.reqRate = rate.NewLimiter(rate.Limit(n), n) // a burst of one second
		}
	} else {
		st.reqRate = nil
	}

	pools := make(map[*config.VirtualService]l7.Servers, 1+len(vs.SubVSs))
	if len(vs.SubVSs) == 0 {
		pools[vs] = l7.Servers{Picker: s.picker, Persist: persistence(s.picker), Sorry: sorryServer(vs), Stats: st.requests}
	}
	for i := range vs.SubVSs {
		v := &vs.SubVSs[i]
		sub, err := b.compileSubVS(c, s, v)
		if err != nil {
			return fmt.Errorf("%s.subVSs[%d]: %w", s.label, i, err)
		}
		pools[v] = l7.Servers{Picker: sub.picker, Persist: persistence(sub.picker), Sorry: sorryServer(v), Stats: sub.requests, HTTP: sub.http}
	}
	bld := &l7.Build{Config: b.cfg, Rules: b.rules, Certs: b.store, Tickets: tickets, Pools: pools}
	sc, err := bld.BuildService(s.label, vs)
	if err != nil {
		return err
	}
	// The pools count requests; the service counts client connections.
	sc.Stats, sc.HTTP = s.stats, st.http
	sc.AccessLog = accessLogFor(b.d.accessLog, b.cfg, vs)
	sc.VS, sc.VSName = vs.ID, vsName(vs)
	sc.IdleTimeout = s.idle
	sc.MaxConns = c.maxConns(vs)
	sc.ConnRate = st.connRate
	sc.RequestRate = st.reqRate
	sc.Bandwidth, sc.Throughput = st.bandwidth, c.throughput
	sc.Mark, sc.Transparent = s.net.Mark, s.net.Transparent
	if sc.Pool == nil && len(sc.SubVSs) == 0 {
		return fmt.Errorf("%s: %w", s.label, l7.ErrNoPool)
	}
	if svc := b.d.svcs[vs.ID]; svc != nil {
		s.l7 = svc
		b.updates = append(b.updates, l7Update{svc: svc, cfg: sc, label: s.label})
	} else {
		svc, err := b.d.proxy.Service(sc)
		if err != nil {
			return fmt.Errorf("%s: %w", s.label, err)
		}
		s.l7 = svc
		b.created = append(b.created, svc)
	}
	b.services[vs.ID] = s.l7
	s.tcp = s.l7
	return nil
}

// persistence returns the layer-7 persistence of a picker, nil unless it
// is a Persister.
func persistence(p balance.Picker) l7.Persistence {
	if pp, ok := p.(*persist.Persister); ok {
		return l7.Persisted(pp)
	}
	return nil
}

// compileSubVS registers the real servers of SubVS v of s and builds its
// picker.
func (b *l7Build) compileSubVS(c *compiled, s *service, v *config.VirtualService) (*subVS, error) {
	label := fmt.Sprintf("%s.subVSs[id=%d]", s.label, v.ID)
	if v.ID <= 0 {
		return nil, fmt.Errorf("%s: SubVS id must be assigned before the service is served", s.label)
	}
	sub := &subVS{vs: v, label: label, servers: make([]realServer, len(v.RealServers))}
	sub.requests, sub.http = b.d.subStats[v.ID], b.d.subHTTP[v.ID]
	if sub.requests == nil {
		sub.requests = new(backend.Counters)
	}
	if sub.http == nil {
		sub.http = new(backend.HTTPCounters)
	}
	b.subStats[v.ID], b.subHTTP[v.ID] = sub.requests, sub.http
	all := make([]*backend.Server, 0, len(v.RealServers))
	for j := range v.RealServers {
		rs := &v.RealServers[j]
		sub.servers[j].rs = rs
		srv, err := c.lookupServer(label, v.ID, rs)
		if err != nil {
			return nil, err
		}
		sub.servers[j].srv = srv
		all = append(all, srv)
	}
	picker, _, table, err := c.newPicker(v, label, all)
	if err != nil {
		return nil, err
	}
	sub.picker, sub.table = picker, table
	s.subs = append(s.subs, sub)
	return sub, nil
}

// reusable: the l7.Service of old is the one in force, and the
// certificates and content rules the service refers to are the same in
// the candidate as in the configuration in force.
func (b *l7Build) reusable(old, s *service) bool {
	return b.prev != nil && old.l7 != nil && b.d.svcs[s.vs.ID] == old.l7 &&
		len(old.subs) == len(s.vs.SubVSs) && sameReferences(b.prev, b.cfg, s.vs)
}

// reuse takes over the Service, its ticket keys and the SubVSs of old: no
// Update, so its connections to real servers stay open.
func (b *l7Build) reuse(c *compiled, old, s *service) error {
	vs := s.vs
	s.l7, s.tcp, s.requests, s.http = old.l7, old.tcp, old.requests, old.http
	b.tickets[vs.ID] = b.d.tickets[vs.ID]
	b.services[vs.ID] = old.l7
	for i, o := range old.subs {
		v := &vs.SubVSs[i]
		if o.vs.ID != v.ID || len(o.servers) != len(v.RealServers) {
			return fmt.Errorf("%s: internal error: SubVSs of an unchanged service differ", s.label)
		}
		sub := &subVS{vs: v, label: o.label, servers: make([]realServer, len(o.servers)),
			picker: o.picker, table: o.table, requests: o.requests, http: o.http}
		for j, r := range o.servers {
			if err := c.keep(o.label, &v.RealServers[j], r.srv); err != nil {
				return err
			}
			sub.servers[j] = realServer{rs: &v.RealServers[j], srv: r.srv}
		}
		b.subStats[v.ID], b.subHTTP[v.ID] = o.requests, o.http
		if sub.table != nil {
			c.tables = append(c.tables, tableID(v))
		}
		if v.Schedule == "dl" {
			c.dl = true
		}
		s.subs = append(s.subs, sub)
	}
	return nil
}

// commit gives the Services in force their new configuration, closes the
// ones no VS uses any more and keeps the candidate's layer-7 state.
func (b *l7Build) commit() {
	for _, u := range b.updates {
		if err := u.svc.Update(u.cfg); err != nil { // checked by compile: cannot fail
			b.d.log.Error("layer-7 service not updated", "service", u.label, "err", err)
		}
	}
	for id, svc := range b.d.svcs {
		if b.services[id] != svc {
			_ = svc.Close()
		}
	}
	b.d.svcs, b.d.tickets, b.d.subStats, b.d.subHTTP = b.services, b.tickets, b.subStats, b.subHTTP
}

// rollback closes the Services compile created.
func (b *l7Build) rollback() {
	for _, svc := range b.created {
		_ = svc.Close()
	}
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

// sameReferences reports whether the certificates (with the
// intermediates that complete their chains) and the content rules that
// vs and its SubVSs refer to by name are the same in prev and cfg.
func sameReferences(prev, cfg *config.Config, vs *config.VirtualService) bool {
	if vs.TLS.Offload {
		for _, name := range vs.TLS.Certificates {
			a, b := certificate(prev, name), certificate(cfg, name)
			if a == nil || b == nil || *a != *b {
				return false
			}
		}
		if !sameIntermediates(prev, cfg) {
			return false
		}
	}
	same := true
	ruleNames(vs, func(name string) {
		if same {
			a, b := contentRule(prev, name), contentRule(cfg, name)
			same = a != nil && b != nil && *a == *b
		}
	})
	return same
}

// certificate returns the certificate of cfg named name, or nil.
func certificate(cfg *config.Config, name string) *config.Certificate {
	for i := range cfg.Certificates {
		if cfg.Certificates[i].Name == name {
			return &cfg.Certificates[i]
		}
	}
	return nil
}

// sameIntermediates reports whether a and b have the same intermediate
// certificates, in the same order.
func sameIntermediates(a, b *config.Config) bool {
	var ia, ib []config.Certificate
	for _, c := range a.Certificates {
		if c.Intermediate {
			ia = append(ia, c)
		}
	}
	for _, c := range b.Certificates {
		if c.Intermediate {
			ib = append(ib, c)
		}
	}
	if len(ia) != len(ib) {
		return false
	}
	for i := range ia {
		if ia[i] != ib[i] {
			return false
		}
	}
	return true
}

// contentRule returns the content rule of cfg named name, or nil.
func contentRule(cfg *config.Config, name string) *config.ContentRule {
	for i := range cfg.ContentRules {
		if cfg.ContentRules[i].Name == name {
			return &cfg.ContentRules[i]
		}
	}
	return nil
}

// ruleNames calls fn with the name of every content rule vs and its
// SubVSs refer to.
func ruleNames(vs *config.VirtualService, fn func(string)) {
	each := func(h *config.HTTPSettings) {
		if h == nil {
			return
		}
		for _, list := range [][]string{h.SelectRules, h.PreRules, h.RequestRules, h.ResponseRules} {
			for _, n := range list {
				fn(n)
			}
		}
	}
	each(vs.HTTP)
	for i := range vs.SubVSs {
		each(vs.SubVSs[i].HTTP)
	}
}

// notes are the parts of a layer-7 service's Status reason about what the
// layer-7 proxy does not do yet.
func (b *l7Build) notes(_ *compiled, s *service) []string {
	return l7Notes(b.cfg, s.vs, s.source.IsValid() && !s.net.Transparent)
}

// l7Notes are the parts of a layer-7 service's Status reason about what
// the layer-7 proxy does not do yet; vip is true when the service would
// connect to its real servers from its VIP.
func l7Notes(cfg *config.Config, vs *config.VirtualService, vip bool) []string {
	var out []string
	if !subnetOriginating(cfg, vs) && vip {
		out = append(out, "the layer-7 proxy connects to real servers from Fulcrum's own address on their subnet, not from the virtual service's")
	}
	if vs.Persistence.Mode == persist.ModeSSL {
		out = append(out, "persistence ssl is not applied by the layer-7 proxy: requests are scheduled by "+scheduleName(vs))
	}
	return out
}
