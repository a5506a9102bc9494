package dataplane

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/time/rate"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
	"github.com/fulcrum-lb/fulcrum/internal/admission"
	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/health"
	"github.com/fulcrum-lb/fulcrum/internal/l4"
	"github.com/fulcrum-lb/fulcrum/internal/l7"
	"github.com/fulcrum-lb/fulcrum/internal/listener"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
	"github.com/fulcrum-lb/fulcrum/internal/status"
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
	// AccessLog receives the access log entries of the services whose
	// accessLog is on; nil turns access logging off (such services say
	// "not applied: …").
	AccessLog accesslog.Logger
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
	accessLog  accesslog.Logger // nil: off
	drivers    []driver         // one per kind of service, asked in order (see driverFor)

	health  *healthSync // the health monitor, synced in the background
	drainer *drainer    // drain timers of services and real servers
	account *accountant // the per-second loop
	proc    procMeter   // process-wide rates, sampled by the accountant

	mu     sync.Mutex // serialises Apply and Close; guards the fields below
	closed bool
	gen    uint64
	vss    map[int]*vsState // by VS ID; survives reloads
}

// vsState is the state of a virtual service that outlives a generation.
type vsState struct {
	stats     *backend.Counters
	connRate  *rate.Limiter         // nil when unlimited
	bandwidth *l4.Shaper            // nil when unlimited
	reqRate   *rate.Limiter         // layer 7: nil when unlimited
	requests  *backend.Counters     // layer 7: the requests of the service's own pool
	http      *backend.HTTPCounters // layer 7: every request of the service
}

// Snapshot is one compiled, immutable generation of the configuration.
type Snapshot struct {
	generation uint64
	services   []*service
	cfg        *config.Config // the configuration compiled; nil for an empty snapshot
	plan       *netcfg.Plan   // what cfg needs of the host, as compiled; nil for an empty snapshot
	options    config.Options
	cancel     context.CancelFunc // ends the pickers' background work; nil for an empty snapshot
	dl         bool               // some served service schedules by dl (fed by health-check latency)
}

// Generation returns the snapshot's number: 1 for the first Apply, one more
// for each successful Apply after it; 0 for the empty snapshot of a new
// Engine.
func (s *Snapshot) Generation() uint64 { return s.generation }

// Plan returns the plan the snapshot was compiled with: what its
// configuration needs of the host (nil for the empty snapshot of a new
// Engine).
func (s *Snapshot) Plan() *netcfg.Plan { return s.plan }

// service is one top-level virtual service of a Snapshot: the parts every
// kind of service has, and the handles of the one its driver compiled.
type service struct {
	vs       *config.VirtualService
	label    string
	state    status.State
	reason   string
	warnings []string // the parts of reason that are warnings (status.VS.Warnings)
	stats    *backend.Counters
	servers  []realServer
	kind     driver // nil unless served
	network  string // "tcp" or "udp" when served
	listen   []netip.AddrPort
	idle     time.Duration  // the idle timeout, defaults resolved (see driver.idleTimeout)
	source   netip.Addr     // the source address of server-side connections (see sourceAddr)
	net      netcfg.Service // the plan's entry: mark, transparency, notes
	picker   balance.Picker
	table    *persist.Table // nil unless the service persists
	tcp      listener.Handler
	pkt      listener.PacketHandler
	handler  *l4.Service  // nil unless served over TCP at layer 4
	uhandler *udp.Service // nil unless served over UDP
	l7       *l7.Service  // nil unless served at layer 7 (http, http2)
	requests *backend.Counters
	http     *backend.HTTPCounters // layer 7: every request of the service
	subs     []*subVS              // the SubVSs of a layer-7 service
	reused   bool                  // compiled parts taken over from the generation in force (see reuse)
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
		accessLog:  o.AccessLog,
		log:        log,
		listeners:  listener.New(log),
		backends:   backend.NewRegistry(),
		budget:     budget,
		gate:       gate,
		proxy:      l4.New(l4.Options{Logger: log, Gate: gate}),
		l7:         l7.New(l7.Options{Logger: log, Gate: gate}),
		udp:        udp.New(udp.Options{Logger: log, MaxSessions: budget.UDPSessions}),
		throughput: l4.NewShaper(0, backend.LimitThroughput),
		vss:        map[int]*vsState{},
	}
	e.snap.Store(&Snapshot{})
	e.health = newHealthSync(ho, e.backends)
	e.drainer = newDrainer(log, e.proxy, e.udp)
	e.drivers = []driver{
		newL7Driver(e.l7, log, o.AccessLog),
		&udpDriver{proxy: e.udp, accessLog: e.accessLog},
		&l4Driver{proxy: e.proxy, accessLog: e.accessLog},
	}
	e.backends.SetHealthHook(e.onHealth)
	// The process-wide totals start at 0 now: the first sample's rates are
	// over the time since (else what came before it would be lost in its
	// baseline).
	e.proc.at = time.Now()
	e.account = startAccountant(e)
	return e
}

// Snapshot returns the generation in force.
func (e *Engine) Snapshot() *Snapshot { return e.snap.Load() }

// ErrClosed is returned by Apply after Close.
var ErrClosed = errors.New("runtime: engine closed")

// Unmanaged is the reason Apply gives netcfg.Unmanaged: a process that
// applies configurations without a plan does not manage the host.
const Unmanaged = "Fulcrum does not manage this host's network"

// Apply is ApplyPlan with the plan of a host Fulcrum does not manage
// (netcfg.Unmanaged): per-service gateways, SNAT and transparency are
// then not applied, and the services using them say so in their status.
// A setting that cannot work at all is refused with the error of
// netcfg.Unmanaged, naming the field.
func (e *Engine) Apply(cfg *config.Config) error {
	if cfg == nil {
		return errors.New("runtime: nil configuration")
	}
	p, err := netcfg.Unmanaged(cfg, Unmanaged)
	if err != nil {
		return err
	}
	return e.ApplyPlan(cfg, p)
}

// ApplyPlan makes cfg, a validated configuration with IDs assigned, the
// one served, with p, what cfg needs of the host as the host was prepared
// for it (netcfg.Make, applied by package hostnet; nil is Unmanaged's).
// cfg and p must not be modified afterwards. It implements
// control.PlanRuntime.
//
// Server-side sockets of a service whose plan entry has a Mark carry it
// (SO_MARK), and so do the sockets of its (and its SubVSs') health
// checks, so that the host's policy routing sends them through the
// service's own gateway; those of a Transparent service leave from the
// client's own address (IP_TRANSPARENT). The plan's notes are appended to
// the service's status reason. A service whose plan entry changed is
// compiled anew, never kept as it was.
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
func (e *Engine) ApplyPlan(cfg *config.Config, p *netcfg.Plan) error {
	if cfg == nil {
		return errors.New("runtime: nil configuration")
	}
	if p == nil {
		var err error
		if p, err = netcfg.Unmanaged(cfg, Unmanaged); err != nil {
			return err
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.closed {
		return ErrClosed
	}
	c, err := e.compile(cfg, p)
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
	c.commitAll()
	if bps := float64(cfg.Options.ThroughputLimit) * 125000; e.throughput.Rate() != bps { // Mbit/s → bytes/s
		e.throughput.SetRate(bps)
	}
	e.backends.Commit(c.servers)
	e.vss = c.states
	e.gen++
	old := e.snap.Load()
	snap := &Snapshot{generation: e.gen, services: c.services, cfg: cfg, plan: p, options: cfg.Options, cancel: c.cancel, dl: c.dl}
	e.snap.Store(snap)
	for k, err := range failed {
		o := c.owners[k]
		e.log.Warn("virtual service cannot listen; retrying every 5 s", "service", o.label, "socket", k, "err", errors.Unwrap(err))
	}
	e.drainer.afterSwap(old, snap)
	retirePickers(old, snap)
	e.health.sync(cfg, p)
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
	e.account.close()
	e.health.flush()
	e.drainer.stop()
	herr := e.health.close()
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
	e.health.flush()
	s := e.backends.Get(k)
	if s == nil {
		return false, fmt.Errorf("no real server %s", k)
	}
	return s.SetHealth(h), nil
}

// onHealth is the backend registry's health hook: it applies the drop
// policy of the options in force.
func (e *Engine) onHealth(s *backend.Server, from, to backend.Health) {
	e.drainer.healthChanged(s, from, to, e.snap.Load().options)
}

// Health returns the status of the health checks of every service and
// SubVS of the configuration in force.
func (e *Engine) Health() []health.VSStatus {
	e.health.flush()
	return e.health.monitor().Status()
}

// Events returns at most limit of the newest health-check events (all
// kept when limit <= 0), newest first, of service vsID (of all when 0).
// It never returns nil.
func (e *Engine) Events(limit, vsID int) []health.Event {
	e.health.flush()
	ev := e.health.monitor().Events(limit, vsID)
	if ev == nil {
		ev = []health.Event{}
	}
	return ev
}

// PersistStats returns the size and counters of every persistence table.
func (e *Engine) PersistStats() []persist.Stats { return e.tables.Stats() }

// Limits returns the data plane's limits and their use.
func (e *Engine) Limits() status.Limits {
	return status.Limits{
		Budget:                 e.budget,
		DefaultServiceConns:    admission.DefaultServiceConns(e.budget.TCPConns),
		DefaultServiceSessions: admission.DefaultServiceConns(e.budget.UDPSessions),
		Conns:                  e.gate.Held(),
		ConnsRefused:           e.gate.Refused(),
		UDPSessions:            e.udp.Active(),
		Process:                e.process(),
	}
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

// pickers calls fn with every picker of the service and of its SubVSs.
func (s *service) pickers(fn func(balance.Picker)) {
	if s.picker != nil {
		fn(s.picker)
	}
	for _, sub := range s.subs {
		fn(sub.picker)
	}
}

// closePickers stops the background work of the service's pickers.
func (s *service) closePickers() { s.pickers(closePicker) }

// closePicker stops a picker's background work, if it has any.
func closePicker(p balance.Picker) {
	if c, ok := p.(io.Closer); ok {
		_ = c.Close()
	}
}

// retirePickers closes the pickers of old, the generation cur replaced,
// that cur does not use, and ends old's pickers' background work.
func retirePickers(old, cur *Snapshot) {
	kept := make(map[balance.Picker]bool, len(cur.services))
	for _, s := range cur.services {
		if s.served() {
			s.pickers(func(p balance.Picker) { kept[p] = true })
		}
	}
	for _, s := range old.services {
		if s.served() {
			s.pickers(func(p balance.Picker) {
				if !kept[p] {
					closePicker(p)
				}
			})
		}
	}
	if old.cancel != nil {
		old.cancel()
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
