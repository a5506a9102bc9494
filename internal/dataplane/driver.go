package dataplane

import (
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/l4"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
	"github.com/fulcrum-lb/fulcrum/internal/udp"
)

// A driver serves one kind of virtual service: layer-4 TCP (l4Driver),
// UDP (udpDriver) or layer 7 (l7Driver). The Engine compiles what every
// kind has (sockets, real servers, picker and persistence, limits, state;
// see compileServed) and hands the rest to the service's driver, through
// one build per driver and candidate generation. A new kind of service is
// a new driver in Engine.drivers.
type driver interface {
	// serves reports whether the driver serves vs, an enabled service
	// that classify accepted.
	serves(vs *config.VirtualService) bool
	// network is the network of the kind's sockets: "tcp" or "udp".
	network() string
	// idleTimeout resolves the idle timeout of vs in cfg, the defaults
	// included: compiling is the one place defaults are resolved, and the
	// compiled service carries the result (service.idle).
	idleTimeout(cfg *config.Config, vs *config.VirtualService) time.Duration
	// begin starts the driver's part of the candidate c (c.cfg is the
	// configuration compiled, c.prev the one in force or nil).
	begin(c *compiled) build
}

// A build is a driver's part of one candidate generation.
type build interface {
	// compile builds the kind's part of s, whose common parts
	// compileServed has set: its handler (s.tcp or s.pkt and the typed
	// handle), and for layer 7 its SubVSs.
	compile(c *compiled, s *service, st *vsState) error
	// reusable reports whether old, the service of the generation in
	// force that the candidate's s configures the same
	// (config.SameService), can serve s as it is: nothing outside the
	// service that its compiled state depends on has changed.
	reusable(old, s *service) bool
	// reuse takes over the kind's parts of old into s; the common ones
	// are taken over by compiled.reuse.
	reuse(c *compiled, old, s *service) error
	// notes are what the kind adds to a served service's Status reason.
	notes(c *compiled, s *service) []string
	// commit puts the kind's part of the candidate in force, once its
	// sockets are reconciled (called with Engine.mu held).
	commit()
	// rollback undoes what compile did outside the candidate.
	rollback()
}

// l4Driver serves tcp services at layer 4 (types gen and tls) with the
// l4.Proxy.
type l4Driver struct {
	proxy     *l4.Proxy
	accessLog accesslog.Logger // Engine.accessLog
}

func (d *l4Driver) serves(vs *config.VirtualService) bool {
	return vs.Protocol == "tcp" && !isL7(vs) && len(vs.SubVSs) == 0
}

func (d *l4Driver) network() string { return "tcp" }

// idleTimeout is the service's idle time, else options.connTimeout, else
// config.DefaultConnTimeout.
func (d *l4Driver) idleTimeout(cfg *config.Config, vs *config.VirtualService) time.Duration {
	idle := vs.Idletime
	if idle == 0 {
		idle = cfg.Options.ConnTimeout
	}
	if idle == 0 {
		idle = config.DefaultConnTimeout
	}
	return time.Duration(idle) * time.Second
}

func (d *l4Driver) begin(*compiled) build { return l4Build{d} }

// l4Build is an l4Driver's part of a candidate: it keeps nothing, since
// an l4.Service holds no resource until it has connections.
type l4Build struct{ d *l4Driver }

func (b l4Build) compile(c *compiled, s *service, st *vsState) error {
	s.handler = b.d.proxy.Service(l4.ServiceConfig{
		ID:          s.vs.ID,
		Name:        s.label,
		Picker:      s.picker,
		IdleTimeout: s.idle,
		Stats:       s.stats,
		Source:      s.source,
		Transparent: s.net.Transparent,
		Mark:        s.net.Mark,
		MaxConns:    c.maxConns(s.vs),
		ConnRate:    st.connRate,
		Bandwidth:   st.bandwidth,
		Throughput:  c.throughput,
		AccessLog:   accessLogFor(b.d.accessLog, c.cfg, s.vs),
		VSName:      vsName(s.vs),
	})
	s.tcp = s.handler
	return nil
}

// reusable: an l4.Service depends on the service and the global options
// only, which compile compared.
func (l4Build) reusable(old, _ *service) bool { return old.handler != nil }

func (l4Build) reuse(_ *compiled, old, s *service) error {
	s.handler, s.tcp = old.handler, old.tcp
	return nil
}

func (l4Build) notes(*compiled, *service) []string { return nil }
func (l4Build) commit()                            {}
func (l4Build) rollback()                          {}

// udpDriver serves udp services (type gen) with the udp.Proxy.
type udpDriver struct {
	proxy     *udp.Proxy
	accessLog accesslog.Logger // Engine.accessLog
}

func (d *udpDriver) serves(vs *config.VirtualService) bool {
	return vs.Protocol == "udp" && vs.Type == "gen" && len(vs.SubVSs) == 0
}

func (d *udpDriver) network() string { return "udp" }

// idleTimeout is the service's idle time, else udp.DefaultIdleTimeout
// (options.connTimeout is for TCP).
func (d *udpDriver) idleTimeout(_ *config.Config, vs *config.VirtualService) time.Duration {
	if vs.Idletime > 0 {
		return time.Duration(vs.Idletime) * time.Second
	}
	return udp.DefaultIdleTimeout
}

func (d *udpDriver) begin(*compiled) build { return udpBuild{d} }

// udpBuild is a udpDriver's part of a candidate; like l4Build, it keeps
// nothing.
type udpBuild struct{ d *udpDriver }

func (b udpBuild) compile(c *compiled, s *service, st *vsState) error {
	var hashKey func([]byte) string
	if s.vs.Persistence.Mode == persist.ModeUDPSIP {
		hashKey = sipHashKey
	}
	s.uhandler = b.d.proxy.Service(udp.ServiceConfig{
		ID:          s.vs.ID,
		Name:        s.label,
		Picker:      s.picker,
		HashKey:     hashKey,
		IdleTimeout: s.idle,
		Stats:       s.stats,
		Source:      s.source,
		Transparent: s.net.Transparent,
		Mark:        s.net.Mark,
		MaxConns:    c.maxConns(s.vs),
		ConnRate:    st.connRate,
		Bandwidth:   st.bandwidth,
		Throughput:  c.throughput,
		AccessLog:   accessLogFor(b.d.accessLog, c.cfg, s.vs),
		VSName:      vsName(s.vs),
	})
	s.pkt = s.uhandler
	return nil
}

// reusable: a udp.Service depends on the service and the global options
// only; sessions refer to the one that started them, which stays.
func (udpBuild) reusable(old, _ *service) bool { return old.uhandler != nil }

func (udpBuild) reuse(_ *compiled, old, s *service) error {
	s.uhandler, s.pkt = old.uhandler, old.pkt
	return nil
}

func (udpBuild) notes(*compiled, *service) []string { return nil }
func (udpBuild) commit()                            {}
func (udpBuild) rollback()                          {}
