// Package runtime turns a configuration into a running data plane.
//
// Engine.Apply compiles a *config.Config into an immutable Snapshot (per
// served virtual service: its sockets, real servers, picker, idle timeout,
// source address and limits), reconciles the listening sockets and swaps
// the Snapshot in atomically. Connections in flight keep the generation
// that accepted them; sockets of unchanged services are kept, so a reload
// loses no connection.
//
// # Sockets that cannot be opened
//
// A virtual service whose address cannot be bound (an address that is not
// local, a port taken by another program) does not stop the others: Apply
// applies the whole configuration, the service's Status is Down with the
// bind error as Reason, the error is logged, and the socket is tried again
// every 5 s, so the service starts by itself when its address appears (an
// HA takeover, an interface brought up) or its port is freed. This is what
// a LoadMaster does with a VS it cannot serve, and it is the behaviour an
// HAProxy user gets only with ip_nonlocal_bind; refusing the whole
// configuration instead would, at start-up, leave every service down for
// one bad address. Apply still fails, changing nothing, on a configuration
// it cannot compile (a service without an ID, two services on one socket,
// an unknown scheduling method).
//
// # Draining and dropping
//
// With Options.DrainTime (LoadMaster's "L7 connection drain time") d:
//
//   - a removed or disabled virtual service stops accepting at once; its
//     connections and UDP sessions are closed d seconds later, or, with
//     d = 0, live until they end or reach their idle timeout;
//   - a real server that is disabled or removed from a service that stays
//     gets no new connections; with DropOnFail its connections are closed
//     at once; otherwise they are closed d seconds later, or, with d = 0,
//     live until they end (as on a LoadMaster, where a drain time of 0
//     turns draining off);
//   - a real server that goes Down (backend.Server.SetHealth, from the
//     health checks) gets no new connections; with DropOnFail its
//     connections are closed at once, with DropAtDrainEnd they are closed
//     d seconds later, otherwise they live until their own timeout.
//
// A real server or service that comes back before its drain time ends
// keeps its connections. The health reaction is a hook on the
// backend.Registry (backend.Registry.SetHealthHook), so it applies whoever
// calls SetHealth; Engine.SetHealth is a convenience that finds the server
// by key.
//
// # Pickers, persistence and health checks
//
// Each served service's picker covers all of its real servers (disabled
// ones included, so a draining server keeps its persisted clients) and is
// wrapped in a persist.Persister when the service persists; persistence
// tables live in the Engine (by VS ID, or the followed service's ID) and
// survive reloads. The Engine owns a health.Monitor, synced after every
// successful Apply, in the background (Apply returns once the data plane
// serves the configuration; Health, Status, Events and Close wait for the
// sync to finish, so they never see a monitor behind it); its results reach the real servers through SetHealth
// and so the drop policy above. Status merges the monitor's statuses,
// Events returns its transitions. See docs/architecture.md.
//
// # Counters
//
// One goroutine per Engine wakes every second: it adds the bytes that long
// TCP connections have moved (l4.Proxy.Account), samples every counter
// into per-second rates, retries sockets that could not be opened, and
// gives memory back to the system when a burst of allocation has ended
// (internal/memtrim). Nothing on the data path takes a lock per packet.
package runtime

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/fulcrum-lb/fulcrum/internal/admission"
	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/certs"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/health"
	"github.com/fulcrum-lb/fulcrum/internal/l4"
	"github.com/fulcrum-lb/fulcrum/internal/l7"
	"github.com/fulcrum-lb/fulcrum/internal/listener"
	"github.com/fulcrum-lb/fulcrum/internal/memtrim"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
	"github.com/fulcrum-lb/fulcrum/internal/udp"
)

// Options configure an Engine.
type Options struct {
	// Logger receives the data plane's logs; slog.Default when nil.
	Logger *slog.Logger
	// MaxUDPSessions bounds the UDP session table of all services; 0
	// takes Budget's.
	MaxUDPSessions int
	// Budget shares the descriptor limit between TCP connections and UDP
	// sessions (internal/admission); the zero Budget takes
	// admission.Current().
	Budget admission.Budget
	// PersistSecret is the per-install secret that signs active
	// persistence cookies (at least persist.MinSecretLen bytes); when
	// empty, a random one is drawn, so cookies do not outlive the process.
	PersistSecret []byte
	// Health configures the Engine's health-check monitor. Its
	// PassiveFailures is ignored: the configuration's
	// options.health.passiveFailures is used. Logger defaults to the
	// Engine's.
	Health health.Options
}

// retryEvery is how often sockets that could not be opened are tried
// again.
const retryEvery = 5 * time.Second

// Engine is the data plane: it serves the configuration last applied.
// Its methods are safe for concurrent use; Apply and Close are serialised.
// Close must be called to stop its goroutines.
type Engine struct {
	log        *slog.Logger
	listeners  *listener.Registry
	backends   *backend.Registry
	proxy      *l4.Proxy
	l7         *l7.Proxy
	udp        *udp.Proxy
	budget     admission.Budget
	gate       *admission.Gate // the ceiling on client connections of all TCP services
	throughput *l4.Shaper      // the global throughput limit; rate 0 when off
	snap       atomic.Pointer[Snapshot]
	tables     *persist.Registry // persistence tables by VS ID; survive reloads
	secret     []byte
	healthOpts health.Options
	mon        atomic.Pointer[health.Monitor] // replaced when passiveFailures changes

	mu     sync.Mutex // serialises Apply and Close; guards the fields below
	closed bool
	gen    uint64
	vss    map[int]*vsState // by VS ID; survives reloads

	// The background sync of the health monitor (see syncHealth).
	healthMu   sync.Mutex
	healthIdle *sync.Cond     // signalled when healthBusy turns false
	healthNext *config.Config // the configuration to sync next, or nil
	healthBusy bool           // a healthWorker runs
	passive    int            // PassiveFailures of mon; used by the healthWorker only
	// The layer-7 state that outlives a generation: Services and session
	// ticket keys by VS ID, request counters by SubVS ID.
	l7svcs   map[int]*l7.Service
	tickets  map[int]*certs.TicketKeys
	subStats map[int]*backend.Counters

	drainMu  sync.Mutex
	vsDrain  map[int]*time.Timer
	rsDrain  map[*backend.Server]*time.Timer
	draining bool // false once Close stopped the timers

	stop chan struct{}
	done chan struct{}
}

// vsState is the state of a virtual service that outlives a generation.
type vsState struct {
	stats     *backend.Counters
	connRate  *rate.Limiter     // nil when unlimited
	bandwidth *l4.Shaper        // nil when unlimited
	reqRate   *rate.Limiter     // layer 7: nil when unlimited
	requests  *backend.Counters // layer 7: the requests of the service's own pool
}

// Snapshot is one compiled, immutable generation of the configuration.
type Snapshot struct {
	generation uint64
	services   []*service
	options    config.Options
	cancel     context.CancelFunc // ends the pickers' background work; nil for an empty snapshot
	dl         bool               // some served service schedules by dl (fed by health-check latency)
}

// Generation returns the snapshot's number: 1 for the first Apply, one more
// for each successful Apply after it; 0 for the empty snapshot of a new
// Engine.
func (s *Snapshot) Generation() uint64 { return s.generation }

// service is one top-level virtual service of a Snapshot.
type service struct {
	vs       *config.VirtualService
	label    string
	state    string
	reason   string
	stats    *backend.Counters
	servers  []realServer
	network  string // "tcp" or "udp" when served
	listen   []netip.AddrPort
	picker   balance.Picker
	table    *persist.Table // nil unless the service persists
	handler  *l4.Service    // nil unless served over TCP at layer 4
	uhandler *udp.Service   // nil unless served over UDP
	l7       *l7.Service    // nil unless served at layer 7 (http, http2)
	requests *backend.Counters
	subs     []*subVS // the SubVSs of a layer-7 service
	reused   bool     // compiled parts taken over from the generation in force (see reuse)
}

// served reports whether the service has sockets.
func (s *service) served() bool { return s.network != "" }

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
	secret := o.PersistSecret
	if len(secret) < persist.MinSecretLen {
		secret = make([]byte, 32)
		_, _ = rand.Read(secret) // never fails (crypto/rand)
	}
	ho := o.Health
	if ho.Logger == nil {
		ho.Logger = log
	}
	budget := o.Budget
	if budget.TCPConns <= 0 {
		budget = admission.Current()
	}
	if o.MaxUDPSessions > 0 {
		budget.UDPSessions = o.MaxUDPSessions
	}
	gate := admission.NewGate(budget.TCPConns)
	e := &Engine{
		tables:     persist.NewRegistry(),
		secret:     secret,
		healthOpts: ho,
		log:        log,
		listeners:  listener.New(log),
		backends:   backend.NewRegistry(),
		budget:     budget,
		gate:       gate,
		proxy:      l4.New(l4.Options{Logger: log, Gate: gate}),
		l7:         l7.New(l7.Options{Logger: log, Gate: gate}),
		l7svcs:     map[int]*l7.Service{},
		tickets:    map[int]*certs.TicketKeys{},
		subStats:   map[int]*backend.Counters{},
		udp:        udp.New(udp.Options{Logger: log, MaxSessions: budget.UDPSessions}),
		throughput: l4.NewShaper(0, backend.LimitThroughput),
		vss:        map[int]*vsState{},
		vsDrain:    map[int]*time.Timer{},
		rsDrain:    map[*backend.Server]*time.Timer{},
		draining:   true,
		stop:       make(chan struct{}),
		done:       make(chan struct{}),
	}
	e.healthIdle = sync.NewCond(&e.healthMu)
	e.snap.Store(&Snapshot{})
	e.mon.Store(health.New(ho)) // passive checks off until a configuration turns them on
	e.backends.SetHealthHook(e.onHealth)
	go e.loop()
	return e
}

// Snapshot returns the generation in force.
func (e *Engine) Snapshot() *Snapshot { return e.snap.Load() }

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("runtime: engine closed")

// Apply makes cfg, a validated configuration with IDs assigned, the one
// served. cfg must not be modified afterwards.
//
// Every enabled top-level virtual service is served on its address and
// port and on its extra ports: tcp ones of type http and http2 (with
// their SubVSs) by the layer-7 proxy, other tcp ones (gen, tls) by the
// layer-4 TCP proxy, udp ones by the UDP proxy. One l7.Service per
// virtual service lives across reloads and has its routing swapped by
// the commit, so keep-alive connections carry on.
//
// A socket that cannot be opened does not fail Apply: see the package
// documentation. If the configuration cannot be compiled, Apply returns an
// error naming the service, e.g. "virtualServices[id=3] 127.0.0.2:80: also
// the address of virtualServices[id=1]", and the previous configuration
// stays in force, untouched.
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
	failed, err := e.listeners.Reconcile(c.set)
	if err != nil {
		c.rollback()
		return fmt.Errorf("runtime: %w", err)
	}
	e.tables.Retain(c.tables...)
	for _, f := range c.commit {
		f()
	}
	e.commitL7(&c.l7)
	if bps := float64(cfg.Options.ThroughputLimit) * 125000; e.throughput.Rate() != bps { // Mbit/s → bytes/s
		e.throughput.SetRate(bps)
	}
	e.backends.Commit(c.servers)
	e.vss = c.states
	e.gen++
	old := e.snap.Load()
	snap := &Snapshot{generation: e.gen, services: c.services, options: cfg.Options, cancel: c.cancel, dl: c.dl}
	e.snap.Store(snap)
	for k, err := range failed {
		o := c.owners[k]
		e.log.Warn("virtual service cannot listen; retrying every 5 s", "service", o.label, "socket", k, "err", errors.Unwrap(err))
	}
	e.afterSwap(old, snap)
	e.syncHealth(cfg)
	e.log.Info("data plane configuration applied", "generation", snap.generation,
		"services", len(c.services), "served", c.served, "sockets", len(c.set.TCP)+len(c.set.UDP), "notListening", len(failed))
	return nil
}

// Close stops serving: it closes every socket, closes every proxied
// connection and UDP session and waits for all of the data plane's
// goroutines to return. Apply fails after Close.
func (e *Engine) Close() error {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return nil
	}
	e.closed = true
	close(e.stop)
	<-e.done
	e.flushHealth()
	e.drainMu.Lock()
	e.draining = false
	for _, t := range e.vsDrain {
		t.Stop()
	}
	for _, t := range e.rsDrain {
		t.Stop()
	}
	e.drainMu.Unlock()
	var herr error
	if m := e.mon.Load(); m != nil {
		herr = m.Close()
	}
	err := errors.Join(herr, e.listeners.Close(), e.proxy.Close(), e.l7.Close(), e.udp.Close())
	old := e.snap.Load()
	for _, s := range old.services {
		s.closePickers()
	}
	if old.cancel != nil {
		old.cancel()
	}
	e.snap.Store(&Snapshot{generation: e.gen})
	return err
}

// Server returns the runtime state of the real server with key k in the
// configuration in force, or nil. Health checks report results on it with
// SetHealth.
func (e *Engine) Server(k backend.Key) *backend.Server { return e.backends.Get(k) }

// SetHealth records the health of the real server with key k and applies
// the drop policy (see the package documentation). It reports whether the
// state changed, and an error when there is no such real server.
func (e *Engine) SetHealth(k backend.Key, h backend.Health) (changed bool, err error) {
	// The monitor is synced in the background after Apply, and a sync
	// writes the health of the servers it takes on: wait for it, so that
	// it cannot overwrite what is set here.
	e.flushHealth()
	s := e.backends.Get(k)
	if s == nil {
		return false, fmt.Errorf("no real server %s", k)
	}
	return s.SetHealth(h), nil
}

// owner says which service a socket belongs to, for messages.
type owner struct {
	label string
	addr  netip.AddrPort
}

// compiled is the result of compile: a candidate generation not yet in
// force.
type compiled struct {
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
	l7       l7Candidate
	restore  []func() // undoes settings changed on servers already in force
	commit   []func() // changes to state in force, made when the candidate is
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
	for _, svc := range c.l7.created {
		_ = svc.Close()
	}
	c.cancel()
}

// compile builds a candidate generation from cfg. It opens no socket and
// changes nothing in force except the settings of kept real servers, which
// rollback restores.
func (e *Engine) compile(cfg *config.Config) (*compiled, error) {
	// Maps sized for the configuration: with 1,000 services and 10,000
	// real servers, growing them step by step shows in the profile.
	nvs, nrs := len(cfg.VirtualServices), 0
	for i := range cfg.VirtualServices {
		nrs += len(cfg.VirtualServices[i].RealServers)
	}
	c := &compiled{
		set:      listener.Set{TCP: make(map[netip.AddrPort]listener.Handler, nvs), UDP: map[netip.AddrPort]listener.PacketHandler{}},
		owners:   make(map[string]owner, nvs),
		states:   make(map[int]*vsState, nvs),
		seen:     make(map[*backend.Server]bool, nrs),
		servers:  make([]*backend.Server, 0, nrs),
		services: make([]*service, 0, nvs),
		l7: l7Candidate{
			tickets:  map[int]*certs.TicketKeys{},
			services: map[int]*l7.Service{},
			subStats: map[int]*backend.Counters{},
		},
	}
	c.ctx, c.cancel = context.WithCancel(context.Background())
	prev := e.reusable(cfg)
	for i := range cfg.VirtualServices {
		vs := &cfg.VirtualServices[i]
		s := &service{vs: vs, label: label(vs, i)}
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
		if s.state == "" {
			var err error
			if old := prev[vs.ID]; old != nil && config.SameService(old.vs, vs) {
				err = c.reuse(old, s)
			} else {
				err = e.compileServed(cfg, c, s, st)
			}
			if err != nil {
				return c, err
			}
			c.served++
		}
	}
	return c, nil
}

// The states of a virtual service in Status.
const (
	// StateUp is an enabled, served service with at least one real server
	// that can take connections.
	StateUp = "Up"
	// StateDown is an enabled service that cannot take connections: no
	// real server is enabled and Up, or none of its sockets could be
	// opened. Reason says which.
	StateDown = "Down"
	// StateDisabled is a service that is not enabled.
	StateDisabled = "Disabled"
	// StateNotServed is an enabled service of a kind the data plane does
	// not serve yet; Reason says why.
	StateNotServed = "NotServed"
)

// The states of a real server in Status.
const (
	// RSEnabled is a real server that receives connections.
	RSEnabled = "Enabled"
	// RSDisabled is a real server taken out of service by configuration.
	RSDisabled = "Disabled"
	// RSDown is an enabled real server that its health check found Down.
	RSDown = "Down"
)

// classify returns StateDisabled or StateNotServed with a reason for a
// service that will not be served, or "" for one that will.
func classify(vs *config.VirtualService) (state, reason string) {
	switch {
	case !isEnabled(vs.Enabled):
		return StateDisabled, ""
	case vs.Protocol != "tcp" && vs.Protocol != "udp":
		return StateNotServed, fmt.Sprintf("protocol %q is not served", vs.Protocol)
	case vs.Protocol == "udp" && vs.Type != "gen":
		return StateNotServed, fmt.Sprintf("service type %q is not served over udp", vs.Type)
	case !slices.Contains([]string{"gen", "http", "http2", "tls"}, vs.Type):
		return StateNotServed, fmt.Sprintf("service type %q is not served", vs.Type)
	case len(vs.SubVSs) > 0 && !isL7(vs):
		return StateNotServed, fmt.Sprintf("SubVSs are served by the layer-7 proxy, for services of type http or http2, not %s", vs.Type)
	}
	return "", ""
}

// compileServed fills in a service that will be served, and its state st.
func (e *Engine) compileServed(cfg *config.Config, c *compiled, s *service, st *vsState) error {
	vs := s.vs
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

	var enabled, all []*backend.Server
	for j := range s.servers {
		rs := s.servers[j].rs
		srv, err := e.lookupServer(c, s.label, vs.ID, rs)
		if err != nil {
			return err
		}
		s.servers[j].srv = srv
		all = append(all, srv)
		if isEnabled(rs.Enabled) {
			enabled = append(enabled, srv)
		}
	}
	if err := e.compilePicker(cfg, c, s, all); err != nil {
		return err
	}

	e.compileLimits(c, vs, st)
	var throughput *l4.Shaper
	if cfg.Options.ThroughputLimit > 0 {
		throughput = e.throughput
	}
	source := sourceAddr(cfg, vs, addr)
	s.network = vs.Protocol
	subEnabled := 0
	var tcp listener.Handler
	if isL7(vs) {
		if subEnabled, err = e.compileL7(cfg, c, s, st); err != nil {
			return err
		}
		tcp = s.l7
	} else if s.network == "udp" {
		var hashKey func([]byte) string
		if vs.Persistence.Mode == persist.ModeUDPSIP {
			hashKey = sipHashKey
		}
		s.uhandler = e.udp.Service(udp.ServiceConfig{
			ID:          vs.ID,
			Name:        s.label,
			Picker:      s.picker,
			HashKey:     hashKey,
			IdleTimeout: time.Duration(vs.Idletime) * time.Second, // 0: udp.DefaultIdleTimeout
			Stats:       s.stats,
			Source:      source,
			MaxConns:    e.maxConns(vs),
			ConnRate:    st.connRate,
			Bandwidth:   st.bandwidth,
			Throughput:  throughput,
		})
	} else {
		idle := vs.Idletime
		if idle == 0 {
			idle = cfg.Options.ConnTimeout
		}
		if idle == 0 {
			idle = config.DefaultConnTimeout
		}
		s.handler = e.proxy.Service(l4.ServiceConfig{
			ID:          vs.ID,
			Name:        s.label,
			Picker:      s.picker,
			IdleTimeout: time.Duration(idle) * time.Second,
			Stats:       s.stats,
			Source:      source,
			MaxConns:    e.maxConns(vs),
			ConnRate:    st.connRate,
			Bandwidth:   st.bandwidth,
			Throughput:  throughput,
		})
		tcp = s.handler
	}
	if err := c.claim(s, tcp); err != nil {
		return err
	}

	s.state = StateUp
	if len(enabled)+subEnabled == 0 {
		s.state = StateDown
	}
	reasons := notes(cfg, vs, len(enabled)+subEnabled)
	if isL7(vs) {
		reasons = append(reasons, l7Notes(cfg, vs, source.IsValid())...)
	}
	s.reason = strings.Join(reasons, "; ")
	return nil
}

// claim adds the sockets of s, served by tcp or s.uhandler, to the
// candidate, refusing a socket another service has.
func (c *compiled) claim(s *service, tcp listener.Handler) error {
	for _, ap := range s.listen {
		k := listener.Key(s.network, ap)
		if o, dup := c.owners[k]; dup {
			return fmt.Errorf("%s %s: also the address of %s", s.label, ap, o.label)
		}
		c.owners[k] = owner{label: s.label, addr: ap}
		if s.network == "udp" {
			c.set.UDP[ap] = s.uhandler
		} else {
			c.set.TCP[ap] = tcp
		}
	}
	return nil
}

// reusable returns, by ID, the services of the generation in force that
// compile may keep as they are when the candidate configures them the
// same: served layer-4 TCP services whose picker has no background work
// bound to their generation (all but adaptive). None when the global
// options changed, since every service's compilation reads them.
//
// Keeping them is what makes one change to a configuration of 1,000
// services cheap: only the services it touches are compiled, and the
// others keep their picker (and so their round-robin position and slow
// start), their handler and their real servers, exactly as a reload that
// recompiled them would have rebuilt them from the same configuration.
func (e *Engine) reusable(cfg *config.Config) map[int]*service {
	cur := e.snap.Load()
	if cur.generation == 0 || !config.SameOptions(&cur.options, &cfg.Options) {
		return nil
	}
	out := make(map[int]*service, len(cur.services))
	for _, s := range cur.services {
		if s.served() && s.network == "tcp" && s.handler != nil && s.l7 == nil && len(s.subs) == 0 &&
			s.vs.Schedule != "adaptive" {
			out[s.vs.ID] = s
		}
	}
	return out
}

// reuse makes s, a service of the candidate configured as old of the
// generation in force (see reusable), serve with old's compiled parts.
func (c *compiled) reuse(old, s *service) error {
	if len(old.servers) != len(s.servers) {
		return fmt.Errorf("%s: internal error: real servers of an unchanged service differ", s.label)
	}
	for j := range s.servers {
		srv := old.servers[j].srv
		if c.seen[srv] {
			return fmt.Errorf("%s: duplicate real server %s port %d", s.label, s.servers[j].rs.Address, s.servers[j].rs.Port)
		}
		s.servers[j].srv = srv
		c.servers = append(c.servers, srv)
		c.seen[srv] = true
	}
	s.network, s.listen = old.network, old.listen
	s.picker, s.table, s.handler = old.picker, old.table, old.handler
	s.state, s.reason = old.state, old.reason
	s.reused = true
	if s.table != nil {
		id := s.vs.ID
		if s.vs.FollowVSID > 0 {
			id = s.vs.FollowVSID
		}
		c.tables = append(c.tables, id)
	}
	if s.vs.Schedule == "dl" {
		c.dl = true
	}
	return c.claim(s, s.handler)
}

// maxConns is the maximum of concurrent connections (UDP: sessions) of vs:
// its limits.maxConns, or by default half of what the descriptor budget
// gives all services of its protocol (admission.DefaultServiceConns), so
// that one service under a flood leaves room to the others.
func (e *Engine) maxConns(vs *config.VirtualService) int {
	if vs.Limits.MaxConns > 0 {
		return vs.Limits.MaxConns
	}
	if vs.Protocol == "udp" {
		return admission.DefaultServiceConns(e.budget.UDPSessions)
	}
	return admission.DefaultServiceConns(e.budget.TCPConns)
}

// Limits are the data plane's shares of the descriptor limit and how much
// of the connection ceiling is in use.
type Limits struct {
	// Budget is how the descriptor limit is shared out.
	Budget admission.Budget `json:"budget"`
	// DefaultServiceConns is the maximum of concurrent connections of a
	// TCP service whose limits.maxConns is 0.
	DefaultServiceConns int `json:"defaultServiceConns"`
	// DefaultServiceSessions is the same for UDP sessions.
	DefaultServiceSessions int `json:"defaultServiceSessions"`
	// Conns is the number of client TCP connections of all services now.
	Conns int64 `json:"conns"`
	// ConnsRefused counts connections refused at the ceiling
	// (Budget.TCPConns).
	ConnsRefused int64 `json:"connsRefused"`
	// UDPSessions is the number of UDP sessions now.
	UDPSessions int `json:"udpSessions"`
}

// Limits returns the data plane's limits and their use.
func (e *Engine) Limits() Limits {
	return Limits{
		Budget:                 e.budget,
		DefaultServiceConns:    admission.DefaultServiceConns(e.budget.TCPConns),
		DefaultServiceSessions: admission.DefaultServiceConns(e.budget.UDPSessions),
		Conns:                  e.gate.Held(),
		ConnsRefused:           e.gate.Refused(),
		UDPSessions:            e.udp.Active(),
	}
}

// compileLimits sets the limiters of st for vs. Limiters of the state in
// force are reused (their rate changes when the candidate is committed),
// so connections shaped by the previous generation follow a new rate.
func (e *Engine) compileLimits(c *compiled, vs *config.VirtualService, st *vsState) {
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
	if config.IsTrue(vs.Transparent) {
		src := "the virtual service's address"
		if subnetOriginating(cfg, vs) {
			src = "Fulcrum's own address on their subnet"
		}
		out = append(out, "transparency is not implemented yet: real servers see "+src)
	}
	if vs.Limits.RequestsPerSec > 0 && vs.Type != "http" && vs.Type != "http2" {
		out = append(out, "requestsPerSec applies to HTTP requests and is not enforced by the layer-4 proxy")
	}
	return out
}

// afterSwap applies the drain and drop policy to what the new snapshot
// took out of service, cancels drains of what it brought back, and closes
// the pickers it replaced.
func (e *Engine) afterSwap(old, cur *Snapshot) {
	opts := cur.options
	served := make(map[int]bool, len(cur.services))
	enabled := make(map[*backend.Server]bool, len(cur.services)*4)
	pickers := make(map[balance.Picker]bool, len(cur.services))
	for _, s := range cur.services {
		if !s.served() {
			continue
		}
		served[s.vs.ID] = true
		pickers[s.picker] = true
		for _, sub := range s.subs {
			pickers[sub.picker] = true
		}
		for _, r := range s.allServers() {
			if isEnabled(r.rs.Enabled) {
				enabled[r.srv] = true
			}
		}
	}
	if old.cancel != nil {
		defer old.cancel()
	}
	for _, s := range old.services {
		if !s.served() {
			continue
		}
		if !pickers[s.picker] {
			closePicker(s.picker)
		}
		for _, sub := range s.subs {
			if !pickers[sub.picker] {
				closePicker(sub.picker)
			}
		}
		if !served[s.vs.ID] {
			e.drainService(s.vs.ID, opts)
			continue
		}
		for _, r := range s.allServers() {
			if isEnabled(r.rs.Enabled) && !enabled[r.srv] {
				e.serverOut(r.srv, "disabled or removed", opts.DropOnFail, opts.DrainTime, true)
			}
		}
	}
	e.drainMu.Lock()
	for id, t := range e.vsDrain {
		if served[id] {
			t.Stop()
			delete(e.vsDrain, id)
		}
	}
	for srv, t := range e.rsDrain {
		if enabled[srv] && srv.Health() != backend.HealthDown {
			t.Stop()
			delete(e.rsDrain, srv)
			srv.SetDraining(false)
		}
	}
	e.drainMu.Unlock()
}

// allServers returns the real servers of the service and of its SubVSs.
func (s *service) allServers() []realServer {
	if len(s.subs) == 0 {
		return s.servers
	}
	all := slices.Clone(s.servers)
	for _, sub := range s.subs {
		all = append(all, sub.servers...)
	}
	return all
}

// closePickers stops the background work of the service's pickers.
func (s *service) closePickers() {
	if s.picker != nil {
		closePicker(s.picker)
	}
	for _, sub := range s.subs {
		closePicker(sub.picker)
	}
}

// closePicker stops a picker's background work, if it has any.
func closePicker(p balance.Picker) {
	if c, ok := p.(io.Closer); ok {
		_ = c.Close()
	}
}

// drainService ends the connections of a service taken out of service
// when the drain time ends.
func (e *Engine) drainService(id int, opts config.Options) {
	if opts.DrainTime <= 0 {
		return
	}
	e.drainMu.Lock()
	defer e.drainMu.Unlock()
	if !e.draining || e.vsDrain[id] != nil {
		return
	}
	e.vsDrain[id] = time.AfterFunc(time.Duration(opts.DrainTime)*time.Second, func() {
		e.drainMu.Lock()
		t := e.vsDrain[id]
		delete(e.vsDrain, id)
		e.drainMu.Unlock()
		if t == nil {
			return // cancelled meanwhile
		}
		n := e.proxy.CloseService(id) + e.udp.CloseService(id)
		e.log.Info("drain time of a removed virtual service ended", "id", id, "closed", n)
	})
}

// serverOut applies the policy to a real server taken out of service:
// drop its connections now, or when the drain time ends, or never. With
// mark, a server given a drain time is marked draining meanwhile, so its
// persisted clients keep coming to it.
func (e *Engine) serverOut(srv *backend.Server, why string, dropNow bool, drainTime int, mark bool) {
	if dropNow {
		n := srv.CloseConns()
		e.log.Info("real server connections dropped", "server", srv.Key().String(), "why", why, "closed", n)
		return
	}
	if drainTime <= 0 || srv.OpenConns() == 0 {
		return
	}
	e.drainMu.Lock()
	defer e.drainMu.Unlock()
	if !e.draining || e.rsDrain[srv] != nil {
		return
	}
	if mark {
		srv.SetDraining(true)
	}
	e.rsDrain[srv] = time.AfterFunc(time.Duration(drainTime)*time.Second, func() {
		e.drainMu.Lock()
		t := e.rsDrain[srv]
		delete(e.rsDrain, srv)
		e.drainMu.Unlock()
		if t == nil {
			return
		}
		srv.SetDraining(false)
		n := srv.CloseConns()
		e.log.Info("drain time of a real server ended", "server", srv.Key().String(), "why", why, "closed", n)
	})
}

// onHealth is the backend registry's health hook.
func (e *Engine) onHealth(s *backend.Server, from, to backend.Health) {
	opts := e.snap.Load().options
	switch {
	case to == backend.HealthDown:
		drain := 0
		if opts.DropAtDrainEnd {
			drain = opts.DrainTime
		}
		s.Metrics().MarkUnavailable() // its return starts a new slow start
		e.serverOut(s, "health check Down", opts.DropOnFail, drain, false)
	case from == backend.HealthDown && s.Settings().Enabled:
		e.drainMu.Lock()
		if t := e.rsDrain[s]; t != nil {
			t.Stop()
			delete(e.rsDrain, s)
			s.SetDraining(false)
		}
		e.drainMu.Unlock()
	}
}

// loop is the Engine's one background goroutine: live byte accounting,
// rates and socket retries, once a second.
func (e *Engine) loop() {
	defer close(e.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	lastRetry := time.Now()
	seen := map[backend.Key]time.Time{}
	trim := memtrim.New()
	for {
		select {
		case <-e.stop:
			return
		case now := <-t.C:
			e.proxy.Account()
			for _, s := range e.snap.Load().services {
				s.stats.Sample(now)
				if s.requests != nil {
					s.requests.Sample(now)
				}
				for _, sub := range s.subs {
					sub.requests.Sample(now)
					for _, r := range sub.servers {
						r.srv.Sample(now)
					}
				}
				for _, r := range s.servers {
					if r.srv != nil {
						r.srv.Sample(now)
					}
				}
			}
			e.feedLatency(seen)
			if trim.Tick(now, int(e.gate.Held())+e.udp.Active()) {
				e.log.Info("memory given back to the system after a burst of allocation ended")
			}
			if now.Sub(lastRetry) >= retryEvery {
				lastRetry = now
				for _, k := range e.listeners.Retry() {
					e.log.Info("virtual service socket opened on retry", "socket", k)
				}
			}
		}
	}
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
