package health

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// The statuses of virtual services and real servers.
const (
	// StatusUp: a real server that passes its check; a service with
	// enough available real servers (at least MinUp, or 1).
	StatusUp = "Up"
	// StatusDown: a real server that fails its check; a service with too
	// few available real servers or a critical real server Down.
	StatusDown = "Down"
	// StatusSorry: a service that would be Down and has a sorry server,
	// which then gets its traffic.
	StatusSorry = "Sorry"
	// StatusDisabled: a service or real server that is not enabled (a real
	// server of a disabled service too).
	StatusDisabled = "Disabled"
	// StatusUnchecked: a service with check type none; its real servers
	// are presumed Up.
	StatusUnchecked = "Unchecked"
	// StatusDraining: a real server the data plane is draining: it keeps
	// its connections and gets no new ones.
	StatusDraining = "Draining"
	// StatusUnknown: a checked real server waiting for its first result;
	// it counts as available meanwhile, as in the data plane.
	StatusUnknown = "Unknown"
)

// VSStatus is the status of one virtual service or SubVS.
type VSStatus struct {
	// ID is the service's ID.
	ID int `json:"id"`
	// Parent is the ID of the parent service of a SubVS; 0 otherwise.
	Parent int `json:"parent,omitempty"`
	// Address is the virtual address ("" for a SubVS).
	Address string `json:"address,omitempty"`
	// Port is the main port (0 for a SubVS).
	Port int `json:"port,omitempty"`
	// Protocol is "tcp" or "udp".
	Protocol string `json:"protocol"`
	// Check is the check type.
	Check string `json:"check"`
	// Status is one of StatusUp, StatusDown, StatusSorry, StatusDisabled,
	// StatusUnchecked.
	Status string `json:"status"`
	// Reason says why, e.g. "critical real server 4 (127.0.0.5:80) is Down".
	Reason string `json:"reason,omitempty"`
	// Since is when Status last changed (or when the service appeared).
	Since time.Time `json:"since"`
	// UpDown counts the service's changes to Down or Sorry since it
	// appeared (its first status not counted).
	UpDown int64 `json:"upDown,omitempty"`
	// RealServers are the service's real servers in configuration order.
	RealServers []RSStatus `json:"realServers"`
}

// RSStatus is the status of one real server.
type RSStatus struct {
	// ID is the real server's ID.
	ID int `json:"id"`
	// Address is the real server's address.
	Address string `json:"address"`
	// Port is the real server's port.
	Port int `json:"port"`
	// Target is what the check connects to ("address:port", the address
	// alone for icmp); for a follower, its leader's check. "" when the real
	// server is not checked.
	Target string `json:"target,omitempty"`
	// Follows is the ID of the real server whose result this one takes; 0
	// when it is checked itself.
	Follows int `json:"follows,omitempty"`
	// Critical is the configured critical flag.
	Critical bool `json:"critical,omitempty"`
	// Status is one of StatusUp, StatusDown, StatusDisabled,
	// StatusDraining, StatusUnknown.
	Status string `json:"status"`
	// Reason says why Status is what it is.
	Reason string `json:"reason,omitempty"`
	// Since is when Status last changed (or when the server appeared).
	Since time.Time `json:"since"`
	// UpDown counts the real server's changes to Down since it appeared
	// (its first status not counted).
	UpDown int64 `json:"upDown,omitempty"`
	// Health is the health written to the data plane: Unknown, Up or Down.
	Health string `json:"health"`
	// LastCheck is when the last check started; zero before the first.
	LastCheck time.Time `json:"lastCheck,omitzero"`
	// LastResult is the reason of the last check, passed or not.
	LastResult string `json:"lastResult,omitempty"`
	// LastUp tells whether the last check passed.
	LastUp bool `json:"lastUp,omitempty"`
	// Latency is the duration of the last check (nanoseconds in JSON).
	Latency time.Duration `json:"latency,omitempty"`
	// Failures and Successes count the consecutive failed and passed
	// checks.
	Failures int `json:"failures,omitempty"`
	// Successes counts the consecutive passed checks.
	Successes int `json:"successes,omitempty"`
	// CheckFailures counts every failed check since the real server was
	// first checked (a follower: its leader's), across changes of its
	// check.
	CheckFailures int64 `json:"checkFailures,omitempty"`
}

// vsState is the monitor's view of one service.
type vsState struct {
	id, parentID int
	parent       *vsState
	address      string
	port         int
	protocol     string
	check        string
	enabled      bool // the service and its parent
	sorry        bool
	minUp        int
	mark         uint32 // the packet mark of its checks (markOf)
	servers      []*rsState
	subs         []*vsState

	status, reason string
	since          time.Time
	upDown         int64 // changes to Down or Sorry
}

func newVSState(vs *config.VirtualService, parent *vsState) *vsState {
	v := &vsState{
		id: vs.ID, parent: parent, address: vs.Address, port: vs.Port, protocol: vs.Protocol,
		check: vs.HealthCheck.Type, enabled: vs.Enabled == nil || *vs.Enabled,
		sorry: vs.SorryServer != nil, minUp: vs.HealthCheck.MinUp,
	}
	if v.check == "" {
		v.check = TypeTCP
	}
	if parent != nil {
		v.parentID = parent.id
		v.enabled = v.enabled && parent.enabled
		parent.subs = append(parent.subs, v)
	}
	return v
}

// rsState is the monitor's view of one real server.
type rsState struct {
	key       backend.Key
	id        int
	vs        *vsState
	enabled   bool
	critical  bool
	follow    int
	leaderCfg *config.RealServer // the real server whose check this one takes (itself if none)
	task      *task              // nil when not checked
	srv       *backend.Server    // nil when the data plane has none
	health    backend.Health     // last written to srv and OnChange

	status, reason string
	since          time.Time
	upDown         int64 // changes to Down
}

func newRSState(v *vsState, rs *config.RealServer) *rsState {
	return &rsState{
		key: backend.Key{VS: v.id, Address: rs.Address, Port: rs.Port}, id: rs.ID, vs: v,
		enabled: rs.Enabled == nil || *rs.Enabled, critical: rs.Critical, follow: rs.Follow,
	}
}

// follows returns the ID of the real server whose result s takes, or 0.
func (s *rsState) follows() int {
	if s.leaderCfg != nil && s.leaderCfg.ID != s.id {
		return s.leaderCfg.ID
	}
	return 0
}

// taskHealth is the health s should have: its check's, or Unknown.
func (s *rsState) taskHealth() backend.Health {
	if s.task == nil {
		return backend.HealthUnknown
	}
	return s.task.health
}

// healthReason explains taskHealth.
func (s *rsState) healthReason() string {
	if s.task == nil {
		return "not checked"
	}
	r := s.task.reason
	if f := s.follows(); f != 0 {
		r = fmt.Sprintf("follows real server %d: %s", f, r)
	}
	return r
}

// computeRS returns the status of s and its reason.
func computeRS(s *rsState) (status, reason string) {
	switch {
	case !s.vs.enabled:
		return StatusDisabled, "virtual service disabled"
	case !s.enabled:
		return StatusDisabled, "disabled"
	case s.srv != nil && s.srv.Draining():
		return StatusDraining, "draining"
	case s.vs.check == TypeNone:
		return StatusUp, "presumed up: check type none"
	case s.task == nil:
		return StatusUnknown, "not checked"
	}
	switch s.task.health {
	case backend.HealthUp:
		return StatusUp, s.healthReason()
	case backend.HealthDown:
		return StatusDown, s.healthReason()
	}
	if f := s.follows(); f != 0 {
		return StatusUnknown, fmt.Sprintf("follows real server %d: waiting for its first check", f)
	}
	return StatusUnknown, "waiting for the first check"
}

// computeVS returns the status of v and its reason from the statuses of
// its real servers (or SubVSs).
func computeVS(v *vsState) (status, reason string) {
	if !v.enabled {
		return StatusDisabled, ""
	}
	down := func(reason string) (string, string) {
		if v.sorry {
			return StatusSorry, reason + "; sorry server in use"
		}
		return StatusDown, reason
	}
	if len(v.subs) > 0 {
		n := 0
		for _, s := range v.subs {
			if s.status == StatusUp || s.status == StatusUnchecked {
				n++
			}
		}
		if n == 0 {
			return down(fmt.Sprintf("none of %d SubVSs is Up", len(v.subs)))
		}
		return StatusUp, fmt.Sprintf("%d of %d SubVSs Up", n, len(v.subs))
	}
	avail, enabled := 0, 0
	for _, s := range v.servers {
		if s.status != StatusDisabled {
			enabled++
		}
		if s.critical && s.status == StatusDown {
			return down(fmt.Sprintf("critical real server %d (%s) is Down",
				s.id, net.JoinHostPort(s.key.Address, strconv.Itoa(s.key.Port))))
		}
		if s.status == StatusUp || s.status == StatusUnknown {
			avail++
		}
	}
	need := max(v.minUp, 1)
	switch {
	case enabled == 0:
		return down("no enabled real server")
	case avail < need && need == 1:
		return down(fmt.Sprintf("all %d enabled real servers are Down", enabled))
	case avail < need:
		return down(fmt.Sprintf("%d real servers Up, at least %d needed", avail, need))
	case v.check == TypeNone:
		return StatusUnchecked, "check type none: real servers presumed Up"
	}
	return StatusUp, fmt.Sprintf("%d of %d enabled real servers Up", avail, enabled)
}

// evaluate recomputes the statuses of v, its real servers and its parent,
// recording every transition. m.mu is held.
func (m *Monitor) evaluate(v *vsState, now time.Time) {
	for _, s := range v.servers {
		st, reason := computeRS(s)
		if st != s.status {
			if s.status != "" {
				m.event(Event{Time: now, VS: v.id, RS: s.id, Address: s.key.Address, Port: s.key.Port,
					From: s.status, To: st, Reason: reason})
				if st == StatusDown {
					s.upDown++
				}
			}
			s.status, s.reason, s.since = st, reason, now
		} else if st != StatusDown && st != StatusUp {
			s.reason = reason
		}
	}
	for ; v != nil; v = v.parent {
		st, reason := computeVS(v)
		if st != v.status {
			if v.status != "" {
				m.event(Event{Time: now, VS: v.id, Address: v.address, Port: v.port, From: v.status, To: st, Reason: reason})
				if (st == StatusDown || st == StatusSorry) && v.status != StatusDown && v.status != StatusSorry {
					v.upDown++
				}
			}
			v.status, v.since = st, now
		}
		v.reason = reason
	}
}

// event records e and logs it. m.mu is held.
func (m *Monitor) event(e Event) {
	e = m.events.add(e)
	if m.opts.OnEvent != nil {
		m.queueChange(change{ev: &e})
	}
	level := slog.LevelInfo
	if e.To == StatusDown || e.To == StatusSorry {
		level = slog.LevelWarn
	}
	what := "virtual service status changed"
	attrs := []any{"vs", e.VS, "from", e.From, "to", e.To, "reason", e.Reason}
	if e.RS != 0 {
		what = "real server status changed"
		attrs = append(attrs, "rs", e.RS, "address", e.Address, "port", e.Port)
	}
	m.log.Log(m.ctx, level, what, attrs...)
}

// Status returns the status of every service and SubVS of the
// configuration in force, in configuration order (each SubVS after its
// parent), with their real servers.
func (m *Monitor) Status() []VSStatus {
	m.mu.Lock()
	defer m.mu.Unlock()
	out := make([]VSStatus, 0, len(m.services))
	for _, v := range m.services {
		vs := VSStatus{
			ID: v.id, Parent: v.parentID, Address: v.address, Port: v.port, Protocol: v.protocol,
			Check: v.check, Status: v.status, Reason: v.reason, Since: v.since, UpDown: v.upDown,
			RealServers: make([]RSStatus, 0, len(v.servers)),
		}
		for _, s := range v.servers {
			rs := RSStatus{
				ID: s.id, Address: s.key.Address, Port: s.key.Port, Follows: s.follows(), Critical: s.critical,
				Status: s.status, Reason: s.reason, Since: s.since, UpDown: s.upDown, Health: s.health.String(),
			}
			// Draining is the data plane's: show it as it is now.
			if st, reason := computeRS(s); st == StatusDraining && rs.Status != st {
				rs.Status, rs.Reason = st, reason
			}
			if t := s.task; t != nil {
				rs.Target = t.spec.Target.String()
				if t.spec.Params.Type == TypeICMP {
					rs.Target = t.spec.Target.Address
				}
				rs.LastCheck, rs.LastResult, rs.LastUp, rs.Latency = t.lastCheck, t.lastResult, t.lastUp, t.latency
				rs.Failures, rs.Successes, rs.CheckFailures = t.fails, t.oks, t.failed
			}
			vs.RealServers = append(vs.RealServers, rs)
		}
		out = append(out, vs)
	}
	return out
}

// Events returns at most limit of the newest events (all kept when limit
// <= 0), newest first, of service vsID (of all services when vsID is 0).
func (m *Monitor) Events(limit, vsID int) []Event {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.events.list(limit, vsID)
}
