// Package runtime turns a configuration into a running data plane.
//
// Engine.Apply compiles a *config.Config into an immutable Snapshot (per
// served virtual service: its sockets, real servers, picker and idle
// timeout), reconciles the listening sockets and swaps the Snapshot in
// atomically. If anything fails, the previous Snapshot and every socket
// stay exactly as they were. Connections in flight keep the generation
// that accepted them; sockets of unchanged services are kept, so a reload
// loses no connection.
package runtime

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/l4"
	"github.com/fulcrum-lb/fulcrum/internal/listener"
)

// Options configure an Engine.
type Options struct {
	// Logger receives the data plane's logs; slog.Default when nil.
	Logger *slog.Logger
}

// Engine is the data plane: it serves the configuration last applied.
// Its methods are safe for concurrent use; Apply and Close are serialised.
type Engine struct {
	log       *slog.Logger
	listeners *listener.Registry
	backends  *backend.Registry
	proxy     *l4.Proxy
	snap      atomic.Pointer[Snapshot]

	mu      sync.Mutex // serialises Apply and Close; guards the fields below
	closed  bool
	gen     uint64
	vsStats map[int]*backend.Counters // by VS ID; survives reloads
}

// Snapshot is one compiled, immutable generation of the configuration.
type Snapshot struct {
	generation uint64
	services   []*service
}

// Generation returns the snapshot's number: 1 for the first Apply, one more
// for each successful Apply after it; 0 for the empty snapshot of a new
// Engine.
func (s *Snapshot) Generation() uint64 { return s.generation }

// service is one top-level virtual service of a Snapshot.
type service struct {
	vs      *config.VirtualService
	label   string
	state   string
	reason  string
	stats   *backend.Counters
	servers []realServer
	listen  []netip.AddrPort
	handler *l4.Service // nil unless served
}

// realServer is one real server of a service; srv is nil unless the
// service is served.
type realServer struct {
	rs  *config.RealServer
	srv *backend.Server
}

// New returns an Engine serving nothing.
func New(o Options) *Engine {
	log := o.Logger
	if log == nil {
		log = slog.Default()
	}
	e := &Engine{
		log:       log,
		listeners: listener.New(log),
		backends:  backend.NewRegistry(),
		proxy:     l4.New(l4.Options{Logger: log}),
		vsStats:   map[int]*backend.Counters{},
	}
	e.snap.Store(&Snapshot{})
	return e
}

// Snapshot returns the generation in force.
func (e *Engine) Snapshot() *Snapshot { return e.snap.Load() }

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("runtime: engine closed")

// Apply makes cfg, a validated configuration with IDs assigned, the one
// served. cfg must not be modified afterwards.
//
// Every enabled top-level tcp virtual service of type gen, http, http2 or
// tls is served as a layer-4 TCP proxy on its address and port and on its
// extra ports. Services that cannot be served yet (udp, SubVSs) are
// accepted and reported by Status as NotServed with the reason.
//
// If a socket cannot be opened, or the configuration cannot be compiled,
// Apply returns an error naming the service and address, e.g.
// "virtualServices[id=3] 127.0.0.2:80: bind: address already in use", and
// the previous configuration stays in force, untouched.
func (e *Engine) Apply(cfg *config.Config) error {
	if cfg == nil {
		return errors.New("runtime: nil configuration")
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	c, err := e.compile(cfg)
	if err != nil {
		c.rollback()
		return err
	}
	if err := e.listeners.Reconcile(c.handlers); err != nil {
		c.rollback()
		var oe *listener.OpenError
		if errors.As(err, &oe) {
			if o, ok := c.owners[oe.Key]; ok {
				return fmt.Errorf("%s %s: %w", o.label, o.addr, oe.Err)
			}
		}
		return fmt.Errorf("runtime: %w", err)
	}
	e.backends.Commit(c.servers)
	e.vsStats = c.stats
	e.gen++
	snap := &Snapshot{generation: e.gen, services: c.services}
	e.snap.Store(snap)
	e.log.Info("data plane configuration applied", "generation", snap.generation,
		"services", len(c.services), "served", len(c.served), "sockets", len(c.handlers))
	return nil
}

// Close stops serving: it closes every socket, closes every proxied
// connection and waits for all of the data plane's goroutines to return.
// Apply fails after Close.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	err := errors.Join(e.listeners.Close(), e.proxy.Close())
	e.snap.Store(&Snapshot{generation: e.gen})
	return err
}

// owner says which service a socket belongs to, for error messages.
type owner struct {
	label string
	addr  netip.AddrPort
}

// compiled is the result of compile: a candidate generation not yet in
// force.
type compiled struct {
	services []*service
	served   []*service
	handlers map[string]listener.Handler // socket key → handler
	owners   map[string]owner            // socket key → service
	servers  []*backend.Server           // every real server of a served service
	seen     map[*backend.Server]bool    // the same, as a set
	stats    map[int]*backend.Counters
	restore  []func() // undoes settings changed on servers already in force
}

// rollback undoes what compile changed outside the candidate.
func (c *compiled) rollback() {
	for _, f := range c.restore {
		f()
	}
}

// compile builds a candidate generation from cfg. It opens no socket and
// changes nothing in force except the settings of kept real servers, which
// rollback restores.
func (e *Engine) compile(cfg *config.Config) (*compiled, error) {
	c := &compiled{
		handlers: map[string]listener.Handler{},
		owners:   map[string]owner{},
		stats:    map[int]*backend.Counters{},
		seen:     map[*backend.Server]bool{},
	}
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		s := &service{vs: vs, label: label(vs, i)}
		c.services = append(c.services, s)
		if vs.ID > 0 {
			if _, dup := c.stats[vs.ID]; dup {
				return c, fmt.Errorf("%s: duplicate id", s.label)
			}
			s.stats = e.vsStats[vs.ID]
			if s.stats == nil {
				s.stats = new(backend.Counters)
			}
			c.stats[vs.ID] = s.stats
		} else {
			s.stats = new(backend.Counters)
		}
		s.servers = make([]realServer, len(vs.RealServers))
		for j := range vs.RealServers {
			s.servers[j].rs = &vs.RealServers[j]
		}
		s.state, s.reason = classify(vs)
		if s.state == "" {
			if err := e.compileServed(cfg, c, s); err != nil {
				return c, err
			}
			c.served = append(c.served, s)
		}
	}
	return c, nil
}

// The states of a virtual service in Status.
const (
	// StateUp is an enabled, served service with at least one enabled real
	// server.
	StateUp = "Up"
	// StateDown is an enabled, served service without an enabled real
	// server: connections to it are closed at once.
	StateDown = "Down"
	// StateDisabled is a service that is not enabled.
	StateDisabled = "Disabled"
	// StateNotServed is an enabled service of a kind the data plane does
	// not serve yet; Reason says why.
	StateNotServed = "NotServed"
)

// The states of a real server in Status. There are no health checks yet,
// so a real server is Enabled or Disabled as configured.
const (
	// RSEnabled is a real server that receives connections.
	RSEnabled = "Enabled"
	// RSDisabled is a real server taken out of service.
	RSDisabled = "Disabled"
)

// classify returns StateDisabled or StateNotServed with a reason for a
// service that will not be served, or "" for one that will.
func classify(vs *config.VirtualService) (state, reason string) {
	switch {
	case !isEnabled(vs.Enabled):
		return StateDisabled, ""
	case vs.Protocol == "udp":
		return StateNotServed, "udp services arrive with the layer-4 UDP work"
	case vs.Protocol != "tcp":
		return StateNotServed, fmt.Sprintf("protocol %q is not served", vs.Protocol)
	case !slices.Contains([]string{"gen", "http", "http2", "tls"}, vs.Type):
		return StateNotServed, fmt.Sprintf("service type %q is not served", vs.Type)
	case len(vs.SubVSs) > 0:
		return StateNotServed, "SubVSs are chosen by content rules, which arrive with the layer-7 proxy"
	}
	return "", ""
}

// compileServed fills in a service that will be served.
func (e *Engine) compileServed(cfg *config.Config, c *compiled, s *service) error {
	vs := s.vs
	if vs.ID <= 0 {
		return fmt.Errorf("%s: id must be assigned before the service is served", s.label)
	}
	addr, err := netip.ParseAddr(vs.Address)
	if err != nil || addr.Zone() != "" {
		return fmt.Errorf("%s: address %q is not an IP address", s.label, vs.Address)
	}
	if vs.Port < 1 || vs.Port > 65535 {
		return fmt.Errorf("%s: port %d is not 1-65535", s.label, vs.Port)
	}
	extra, err := config.ParsePorts(vs.ExtraPorts)
	if err != nil {
		return fmt.Errorf("%s: extraPorts: %w", s.label, err)
	}
	for _, p := range append([]int{vs.Port}, extra...) {
		s.listen = append(s.listen, netip.AddrPortFrom(addr.Unmap(), uint16(p)))
	}

	var enabled []*backend.Server
	for j := range s.servers {
		rs := s.servers[j].rs
		set := backend.Settings{ID: rs.ID, Weight: rs.Weight, Limit: rs.Limit, Enabled: isEnabled(rs.Enabled)}
		srv := e.backends.Lookup(backend.Key{VS: vs.ID, Address: rs.Address, Port: rs.Port}, set)
		if c.seen[srv] {
			return fmt.Errorf("%s: duplicate real server %s port %d", s.label, rs.Address, rs.Port)
		}
		if old := srv.Settings(); old != set {
			c.restore = append(c.restore, func() { srv.Configure(old) })
			srv.Configure(set)
		}
		s.servers[j].srv = srv
		c.servers = append(c.servers, srv)
		c.seen[srv] = true
		if set.Enabled {
			enabled = append(enabled, srv)
		}
	}
	picker, err := balance.New(vs.Schedule, enabled)
	if err != nil {
		return fmt.Errorf("%s: schedule: %w", s.label, err)
	}

	idle := vs.Idletime
	if idle == 0 {
		idle = cfg.Options.ConnTimeout
	}
	if idle == 0 {
		idle = config.DefaultConnTimeout
	}
	s.handler = e.proxy.Service(l4.ServiceConfig{
		Name:        s.label,
		Picker:      picker,
		IdleTimeout: time.Duration(idle) * time.Second,
		Stats:       s.stats,
	})
	for _, ap := range s.listen {
		k := listener.Key("tcp", ap)
		if o, dup := c.owners[k]; dup {
			return fmt.Errorf("%s %s: also the address of %s", s.label, ap, o.label)
		}
		c.owners[k] = owner{label: s.label, addr: ap}
		c.handlers[k] = s.handler
	}

	s.state = StateUp
	if len(enabled) == 0 {
		s.state = StateDown
	}
	s.reason = strings.Join(notes(vs, len(enabled)), "; ")
	return nil
}

// notes are the parts of a served service's Status reason: what it does
// not do yet, or why it is down.
func notes(vs *config.VirtualService, enabled int) []string {
	var out []string
	if enabled == 0 {
		out = append(out, "no enabled real server")
	}
	if vs.Type != "gen" {
		out = append(out, fmt.Sprintf("type %s is served as a layer-4 TCP proxy until the layer-7 proxy exists", vs.Type))
	}
	if vs.TLS.Offload {
		out = append(out, "TLS offload is not performed yet: TLS passes through to the real servers")
	}
	if !balance.Implemented(vs.Schedule) {
		out = append(out, fmt.Sprintf("scheduling method %s not yet implemented; using %s", vs.Schedule, balance.FallbackMethod))
	}
	if vs.Persistence.Mode != "" && vs.Persistence.Mode != "none" {
		out = append(out, fmt.Sprintf("persistence %s not yet implemented", vs.Persistence.Mode))
	}
	return out
}

// label names a service in errors and logs: "virtualServices[id=3]", or
// by position when it has no ID yet.
func label(vs *config.VirtualService, i int) string {
	if vs.ID > 0 {
		return fmt.Sprintf("virtualServices[id=%d]", vs.ID)
	}
	return fmt.Sprintf("virtualServices[%d]", i)
}

// isEnabled reads an optional enabled flag, whose default is true.
func isEnabled(b *bool) bool { return b == nil || *b }
