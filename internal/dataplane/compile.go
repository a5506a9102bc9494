package dataplane

import (
	"context"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"

	"golang.org/x/time/rate"

	"github.com/fulcrum-lb/fulcrum/internal/admission"
	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/certs"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/l4"
	"github.com/fulcrum-lb/fulcrum/internal/listener"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
	"github.com/fulcrum-lb/fulcrum/internal/status"
)

// owner says which service a socket belongs to, for messages.
type owner struct {
	label string
	addr  netip.AddrPort
}

// compiled is the result of compile: a candidate generation not yet in
// force.
type compiled struct {
	cfg      *config.Config // the configuration compiled
	plan     *netcfg.Plan   // what cfg needs of the host
	prev     *config.Config // the configuration in force; nil before the first Apply
	services []*service
	served   int
	set      listener.Set
	owners   map[string]owner         // socket key → service
	servers  []*backend.Server        // every real server of a served service
	seen     map[*backend.Server]bool // the same, as a set
	states   map[int]*vsState
	tables   []int // IDs of the persistence tables in use
	ctx      context.Context
	cancel   context.CancelFunc // ends the background work of the candidate's pickers
	dl       bool
	builds   map[driver]build // the drivers' parts of the candidate
	restore  []func()         // undoes settings changed on servers already in force
	commit   []func()         // changes to state in force, made when the candidate is

	// What compiling reads of the Engine.
	log        *slog.Logger
	backends   *backend.Registry
	registry   *persist.Registry // the persistence tables
	secret     []byte
	budget     admission.Budget
	throughput *l4.Shaper // the global throughput limit; nil when off
	// observe is the pickers' balance.Options.Observe: passive health
	// checks, nil when the configuration turns them off.
	observe func(*backend.Server, balance.Outcome)
}

// rollback undoes what compile changed outside the candidate and stops
// the pickers it built.
func (c *compiled) rollback() {
	for _, f := range c.restore {
		f()
	}
	for _, s := range c.services {
		if !s.reused { // a reused picker still serves the generation in force
			s.closePickers()
		}
	}
	for _, b := range c.builds {
		b.rollback()
	}
	c.cancel()
}

// commitAll makes the changes of the candidate to state in force.
func (c *compiled) commitAll() {
	for _, f := range c.commit {
		f()
	}
	for _, b := range c.builds {
		b.commit()
	}
}

// compile builds a candidate generation from cfg and its plan p. It opens
// no socket and changes nothing in force except the settings of kept real
// servers, which rollback restores.
func (e *Engine) compile(cfg *config.Config, p *netcfg.Plan) (*compiled, error) {
	// Maps sized for the configuration: with 1,000 services and 10,000
	// real servers, growing them step by step shows in the profile.
	nvs, nrs := len(cfg.VirtualServices), 0
	for i := range cfg.VirtualServices {
		nrs += len(cfg.VirtualServices[i].RealServers)
	}
	cur := e.snap.Load()
	c := &compiled{
		cfg:      cfg,
		plan:     p,
		prev:     cur.cfg,
		set:      listener.Set{TCP: make(map[netip.AddrPort]listener.Handler, nvs), UDP: map[netip.AddrPort]listener.PacketHandler{}},
		owners:   make(map[string]owner, nvs),
		states:   make(map[int]*vsState, nvs),
		seen:     make(map[*backend.Server]bool, nrs),
		servers:  make([]*backend.Server, 0, nrs),
		services: make([]*service, 0, nvs),
		builds:   make(map[driver]build, len(e.drivers)),
		log:      e.log,
		backends: e.backends,
		registry: e.tables,
		secret:   e.secret,
		budget:   e.budget,
		observe:  e.health.observer(cfg),
	}
	if cfg.Options.ThroughputLimit > 0 {
		c.throughput = e.throughput
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	for _, d := range e.drivers { // every driver, so that each commits what it no longer serves
		c.builds[d] = d.begin(c)
	}
	prev := reusable(cur, cfg)
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		s := &service{vs: vs, label: label(vs, i), net: p.Service(vs.ID)}
		c.services = append(c.services, s)
		st := &vsState{stats: new(backend.Counters)}
		if vs.ID > 0 {
			if _, dup := c.states[vs.ID]; dup {
				return c, fmt.Errorf("%s: duplicate id", s.label)
			}
			if old := e.vss[vs.ID]; old != nil {
				*st = *old
			}
			c.states[vs.ID] = st
		}
		s.stats = st.stats
		s.servers = make([]realServer, len(vs.RealServers))
		for j := range vs.RealServers {
			s.servers[j].rs = &vs.RealServers[j]
		}
		s.state, s.reason = classify(vs)
		if s.state != "" {
			continue
		}
		d := e.driverFor(vs)
		if d == nil { // classify and the drivers disagree
			s.state, s.reason = status.NotServed, fmt.Sprintf("service type %q is not served over %s", vs.Type, vs.Protocol)
			continue
		}
		s.kind = d
		b := c.builds[d]
		var err error
		if old := prev[vs.ID]; old != nil && old.kind == d && config.SameService(old.vs, vs) && samePlan(old.net, s.net) && b.reusable(old, s) {
			err = c.reuse(b, old, s)
		} else {
			err = e.compileServed(c, b, s, st)
		}
		if err != nil {
			return c, err
		}
		c.served++
	}
	return c, nil
}

// driverFor returns the driver that serves vs, or nil.
func (e *Engine) driverFor(vs *config.VirtualService) driver {
	for _, d := range e.drivers {
		if d.serves(vs) {
			return d
		}
	}
	return nil
}

// classify returns status.Disabled or status.NotServed with a reason for a
// service that will not be served, or "" for one that will.
func classify(vs *config.VirtualService) (state status.State, reason string) {
	switch {
	case !isEnabled(vs.Enabled):
		return status.Disabled, ""
	case vs.Protocol != "tcp" && vs.Protocol != "udp":
		return status.NotServed, fmt.Sprintf("protocol %q is not served", vs.Protocol)
	case vs.Protocol == "udp" && vs.Type != "gen":
		return status.NotServed, fmt.Sprintf("service type %q is not served over udp", vs.Type)
	case !slices.Contains([]string{"gen", "http", "http2", "tls"}, vs.Type):
		return status.NotServed, fmt.Sprintf("service type %q is not served", vs.Type)
	case len(vs.SubVSs) > 0 && !isL7(vs):
		return status.NotServed, fmt.Sprintf("SubVSs are served by the layer-7 proxy, for services of type http or http2, not %s", vs.Type)
	}
	return "", ""
}

// compileServed fills in a service that will be served, and its state st:
// the parts every kind has here, the rest by its driver's build b.
func (e *Engine) compileServed(c *compiled, b build, s *service, st *vsState) error {
	cfg, vs := c.cfg, s.vs
	if vs.ID <= 0 {
		return fmt.Errorf("%s: id must be assigned before the service is served", s.label)
	}
	addr, err := netip.ParseAddr(vs.Address)
	if err != nil || addr.Zone() != "" {
		return fmt.Errorf("%s: address %q is not an IP address", s.label, vs.Address)
	}
	addr = addr.Unmap()
	if vs.Port < 1 || vs.Port > 65535 {
		return fmt.Errorf("%s: port %d is not 1-65535", s.label, vs.Port)
	}
	extra, err := config.ParsePorts(vs.ExtraPorts)
	if err != nil {
		return fmt.Errorf("%s: extraPorts: %w", s.label, err)
	}
	for _, p := range append([]int{vs.Port}, extra...) {
		s.listen = append(s.listen, netip.AddrPortFrom(addr, uint16(p)))
	}

	all := make([]*backend.Server, 0, len(s.servers))
	for j := range s.servers {
		srv, err := c.lookupServer(s.label, vs.ID, s.servers[j].rs)
		if err != nil {
			return err
		}
		s.servers[j].srv = srv
		all = append(all, srv)
	}
	if err := c.compilePicker(s, all); err != nil {
		return err
	}

	c.compileLimits(vs, st)
	s.source = sourceAddr(cfg, vs, addr)
	s.idle = s.kind.idleTimeout(cfg, vs)
	s.network = s.kind.network()
	if err := b.compile(c, s, st); err != nil {
		return err
	}
	if err := c.claim(s); err != nil {
		return err
	}

	enabled := 0
	for _, r := range s.allServers() {
		if isEnabled(r.rs.Enabled) {
			enabled++
		}
	}
	s.state = status.Up
	if enabled == 0 {
		s.state = status.Down
	}
	reasons := append(notes(cfg, vs, enabled), b.notes(c, s)...)
	reasons = append(reasons, e.accessLogNotes(cfg, vs)...)
	reasons = append(reasons, planNotes(s)...)
	s.warnings = warnings(cfg, vs)
	reasons = append(reasons, s.warnings...)
	s.reason = strings.Join(reasons, "; ")
	return nil
}

// claim adds the sockets of s, served by s.tcp or s.pkt, to the
// candidate, refusing a socket another service has.
func (c *compiled) claim(s *service) error {
	for _, ap := range s.listen {
		k := listener.Key(s.network, ap)
		if o, dup := c.owners[k]; dup {
			return fmt.Errorf("%s %s: also the address of %s", s.label, ap, o.label)
		}
		c.owners[k] = owner{label: s.label, addr: ap}
		if s.pkt != nil {
			c.set.UDP[ap] = s.pkt
		} else {
			c.set.TCP[ap] = s.tcp
		}
	}
	return nil
}

// reusable returns, by ID, the services of the generation in force cur
// that compile may keep as they are when the candidate cfg configures
// them the same (and their driver agrees, see build.reusable): served
// services none of whose pickers has background work bound to their
// generation (all but adaptive). None when the global options changed,
// since every service's compilation reads them.
//
// Keeping them is what makes one change to a configuration of 1,000
// services cheap: only the services it touches are compiled, and the
// others keep their picker (and so their round-robin position and slow
// start), their persistence table, their handler and their real servers,
// exactly as a reload that recompiled them would have rebuilt them from
// the same configuration; a layer-7 service also keeps its connections
// to real servers.
func reusable(cur *Snapshot, cfg *config.Config) map[int]*service {
	if cur.generation == 0 || cur.cfg == nil || !config.SameOptions(&cur.options, &cfg.Options) {
		return nil
	}
	out := make(map[int]*service, len(cur.services))
	for _, s := range cur.services {
		if s.served() && !adaptive(s.vs) {
			out[s.vs.ID] = s
		}
	}
	return out
}

// adaptive reports whether vs or one of its SubVSs schedules by
// adaptive, whose picker polls the real servers for its generation.
func adaptive(vs *config.VirtualService) bool {
	if vs.Schedule == "adaptive" {
		return true
	}
	for i := range vs.SubVSs {
		if vs.SubVSs[i].Schedule == "adaptive" {
			return true
		}
	}
	return false
}

// reuse makes s, a service of the candidate configured as old of the
// generation in force (see reusable), serve with old's compiled parts:
// the common ones here, the kind's by its build b.
func (c *compiled) reuse(b build, old, s *service) error {
	if len(old.servers) != len(s.servers) {
		return fmt.Errorf("%s: internal error: real servers of an unchanged service differ", s.label)
	}
	for j := range s.servers {
		srv := old.servers[j].srv
		if err := c.keep(s.label, s.servers[j].rs, srv); err != nil {
			return err
		}
		s.servers[j].srv = srv
	}
	s.network, s.listen, s.idle, s.source = old.network, old.listen, old.idle, old.source
	s.picker, s.table = old.picker, old.table
	s.state, s.reason, s.warnings = old.state, old.reason, old.warnings
	s.reused = true
	if s.table != nil {
		c.tables = append(c.tables, tableID(s.vs))
	}
	if s.vs.Schedule == "dl" {
		c.dl = true
	}
	if err := b.reuse(c, old, s); err != nil {
		return err
	}
	return c.claim(s)
}

// keep records srv, the server of real server rs kept from the generation
// in force, in the candidate.
func (c *compiled) keep(label string, rs *config.RealServer, srv *backend.Server) error {
	if c.seen[srv] {
		return fmt.Errorf("%s: duplicate real server %s port %d", label, rs.Address, rs.Port)
	}
	c.servers = append(c.servers, srv)
	c.seen[srv] = true
	return nil
}

// lookupServer returns the registry's server for real server rs of the
// service or SubVS with ID vsID and records it in the candidate, changing
// its settings (restored by rollback).
func (c *compiled) lookupServer(label string, vsID int, rs *config.RealServer) (*backend.Server, error) {
	set := backend.Settings{ID: rs.ID, Weight: rs.Weight, Limit: rs.Limit, Enabled: isEnabled(rs.Enabled)}
	srv := c.backends.Lookup(backend.Key{VS: vsID, Address: rs.Address, Port: rs.Port}, set)
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

// maxConns is the maximum of concurrent connections (UDP: sessions) of vs:
// its limits.maxConns, or by default half of what the descriptor budget
// gives all services of its protocol (admission.DefaultServiceConns), so
// that one service under a flood leaves room to the others.
func (c *compiled) maxConns(vs *config.VirtualService) int {
	if vs.Limits.MaxConns > 0 {
		return vs.Limits.MaxConns
	}
	if vs.Protocol == "udp" {
		return admission.DefaultServiceConns(c.budget.UDPSessions)
	}
	return admission.DefaultServiceConns(c.budget.TCPConns)
}

// compileLimits sets the limiters of st for vs. Limiters of the state in
// force are reused (their rate changes when the candidate is committed),
// so connections shaped by the previous generation follow a new rate.
func (c *compiled) compileLimits(vs *config.VirtualService, st *vsState) {
	if n := vs.Limits.ConnsPerSec; n > 0 {
		if st.connRate == nil || st.connRate.Limit() != rate.Limit(n) {
			st.connRate = rate.NewLimiter(rate.Limit(n), n) // a burst of one second
		}
	} else {
		st.connRate = nil
	}
	if kbit := vs.Limits.Bandwidth; kbit > 0 {
		bps := float64(kbit) * 125 // kbit/s → bytes/s
		if st.bandwidth == nil {
			st.bandwidth = l4.NewShaper(bps, backend.LimitBandwidth)
		} else if st.bandwidth.Rate() != bps {
			b := st.bandwidth
			c.commit = append(c.commit, func() { b.SetRate(bps) })
		}
	} else if st.bandwidth != nil {
		b := st.bandwidth
		c.commit = append(c.commit, func() { b.SetRate(0) }) // connections shaped so far are released
		st.bandwidth = nil
	}
}

// sourceAddr returns the source address of the server-side connections of
// vs, whose VIP is vip: the VIP, or the zero Addr (the kernel's choice:
// Fulcrum's own address on the route to the real server) with subnet
// originating requests on, globally or for the service. A wildcard VIP
// has no address to give, so the kernel chooses then too.
func sourceAddr(cfg *config.Config, vs *config.VirtualService, vip netip.Addr) netip.Addr {
	if subnetOriginating(cfg, vs) || vip.IsUnspecified() {
		return netip.Addr{}
	}
	return vip
}

// subnetOriginating reads the global and per-service switches; the
// per-service default is true for tcp and false for udp, as on a
// LoadMaster.
func subnetOriginating(cfg *config.Config, vs *config.VirtualService) bool {
	if cfg.Options.SubnetOriginating {
		return true
	}
	if vs.SubnetOriginating != nil {
		return *vs.SubnetOriginating
	}
	return vs.Protocol != "udp"
}

// notes are the parts of a served service's Status reason: what it does
// not do yet, or why it is down.
func notes(cfg *config.Config, vs *config.VirtualService, enabled int) []string {
	var out []string
	if enabled == 0 {
		out = append(out, "no enabled real server")
	}
	if vs.Type == "tls" {
		out = append(out, "type tls (STARTTLS) is served as a layer-4 TCP proxy")
	}
	if vs.TLS.Offload && !isL7(vs) {
		out = append(out, fmt.Sprintf("TLS offload is performed for services of type http and http2, not %s: TLS passes through to the real servers", vs.Type))
	}
	if !balance.Implemented(vs.Schedule) {
		out = append(out, fmt.Sprintf("scheduling method %s not yet implemented; using %s", vs.Schedule, balance.FallbackMethod))
	}
	if !isL7(vs) {
		out = append(out, persistNotes(vs)...)
	}
	if vs.Limits.RequestsPerSec > 0 && vs.Type != "http" && vs.Type != "http2" {
		out = append(out, "requestsPerSec applies to HTTP requests and is not enforced by the layer-4 proxy")
	}
	return out
}

// warnings are the parts of a served service's Status reason about what
// works but needs the operator's attention (status.VS.Warnings).
func warnings(cfg *config.Config, vs *config.VirtualService) []string {
	if !vs.TLS.Offload || !isL7(vs) {
		return nil
	}
	for _, name := range vs.TLS.Certificates {
		for i := range cfg.Certificates {
			if ct := &cfg.Certificates[i]; ct.Name == name && !ct.Intermediate && certs.IsSelfSigned(ct.CertPEM) {
				return []string{certs.SelfSignedWarning}
			}
		}
	}
	return nil
}

// samePlan reports whether two plan entries of a service ask the same of
// its server-side sockets and give the same notes.
func samePlan(a, b netcfg.Service) bool {
	return a.Mark == b.Mark && a.Transparent == b.Transparent && slices.Equal(a.Notes, b.Notes)
}

// planNotes are the parts of a served service's Status reason that come
// from its plan entry: the plan's "not applied: …" notes, and for a
// transparent service each real server of the other address family than
// the VIP, whose connections leave from Fulcrum's address.
func planNotes(s *service) []string {
	out := slices.Clone(s.net.Notes)
	if !s.net.Transparent {
		return out
	}
	vip, err := netip.ParseAddr(s.vs.Address)
	if err != nil {
		return out
	}
	check := func(rs []config.RealServer) {
		for i := range rs {
			if a, err := netip.ParseAddr(rs[i].Address); err == nil && a.Unmap().Is4() != vip.Unmap().Is4() {
				out = append(out, fmt.Sprintf("not applied: transparency for real server %s: it is not of the clients' address family, so it sees Fulcrum's address", a))
			}
		}
	}
	check(s.vs.RealServers)
	for i := range s.vs.SubVSs {
		check(s.vs.SubVSs[i].RealServers)
	}
	return out
}
