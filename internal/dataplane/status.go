package dataplane

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/health"
	"github.com/fulcrum-lb/fulcrum/internal/listener"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
)

// VSStatus is the state and counters of one top-level virtual service.
type VSStatus struct {
	// ID is the service's configuration ID.
	ID int `json:"id"`
	// Address is the virtual IP address.
	Address string `json:"address"`
	// Port is the main port.
	Port int `json:"port"`
	// Protocol is "tcp" or "udp".
	Protocol string `json:"protocol"`
	// State is StateUp, StateDown, StateDisabled or StateNotServed.
	State string `json:"state"`
	// Reason explains a Down or NotServed state and anything the service
	// does not do yet; "" when there is nothing to say.
	Reason string `json:"reason,omitempty"`
	// Sockets are the service's listening sockets (main port first, then
	// the extra ports) and whether each is open; empty unless served.
	Sockets []SocketStatus `json:"sockets,omitempty"`
	// ActiveConns is the number of client connections (UDP: sessions)
	// open now.
	ActiveConns int64 `json:"activeConns"`
	// TotalConns is the number of client connections (UDP: sessions)
	// accepted.
	TotalConns int64 `json:"totalConns"`
	// BytesIn is the bytes received from clients. Long connections are
	// counted while they last, about once a second.
	BytesIn int64 `json:"bytesIn"`
	// BytesOut is the bytes sent to clients.
	BytesOut int64 `json:"bytesOut"`
	// Errors is the number of client connections (UDP: new sessions) that
	// could not be proxied: no real server was available or none could be
	// reached.
	Errors int64 `json:"errors"`
	// Rates are the per-second rates over the last second.
	Rates backend.Rates `json:"rates"`
	// LimitHits count how often each limit was reached.
	LimitHits LimitHits `json:"limitHits"`
	// RealServers are the service's real servers, in configuration order.
	RealServers []RSStatus `json:"realServers"`
	// Check is the health-check type ("none" when unchecked); "" before
	// the health monitor has the configuration.
	Check string `json:"check,omitempty"`
	// Health is the status of the service by its health checks:
	// health.StatusUp, StatusDown, StatusSorry, StatusDisabled or
	// StatusUnchecked; "" before the health monitor has the configuration.
	Health string `json:"health,omitempty"`
	// HealthReason says why Health is what it is, e.g. "critical real
	// server 4 (127.0.0.5:80) is Down".
	HealthReason string `json:"healthReason,omitempty"`
	// Persistence is the size and counters of the service's persistence
	// table (the followed service's, with port following); absent when
	// the service does not persist.
	Persistence *persist.Stats `json:"persistence,omitempty"`
	// L7 is the layer-7 view of an http or http2 service; absent for
	// services served at layer 4 or not served.
	L7 *L7Status `json:"l7,omitempty"`
}

// L7Status counts the HTTP requests of a layer-7 service. ActiveConns and
// TotalConns of its VSStatus count client connections, which carry any
// number of requests.
type L7Status struct {
	// Requests is the number of requests sent to the service's own real
	// servers (0 for a service with SubVSs: see SubVSs).
	Requests int64 `json:"requests"`
	// ActiveRequests is the number of those in progress.
	ActiveRequests int64 `json:"activeRequests"`
	// RequestRate is the requests per second over the last second.
	RequestRate float64 `json:"requestRate"`
	// SubVSs are the service's SubVSs, in configuration order.
	SubVSs []SubVSStatus `json:"subVSs,omitempty"`
}

// SubVSStatus is one SubVS of a layer-7 service.
type SubVSStatus struct {
	// ID is the SubVS's configuration ID.
	ID int `json:"id"`
	// NickName is its configured name.
	NickName string `json:"nickname,omitempty"`
	// Requests is the number of requests the SubVS was chosen for.
	Requests int64 `json:"requests"`
	// ActiveRequests is the number of those in progress.
	ActiveRequests int64 `json:"activeRequests"`
	// Health is the SubVS's status by its health checks; "" before the
	// health monitor has the configuration.
	Health string `json:"health,omitempty"`
	// RealServers are the SubVS's real servers, in configuration order.
	RealServers []RSStatus `json:"realServers"`
}

// SocketStatus is one listening socket of a service.
type SocketStatus struct {
	// Address is the socket's address and port.
	Address string `json:"address"`
	// Listening is true when the socket is open.
	Listening bool `json:"listening"`
	// Error is why the socket could not be opened; it is tried again
	// every 5 s.
	Error string `json:"error,omitempty"`
}

// LimitHits count how often each limit of a service was reached.
type LimitHits struct {
	// MaxConns counts connections (UDP: new sessions) refused over the
	// service's maximum of concurrent connections.
	MaxConns int64 `json:"maxConns"`
	// ConnsPerSec counts connections (UDP: new sessions) refused over the
	// service's connection rate.
	ConnsPerSec int64 `json:"connsPerSec"`
	// Bandwidth counts TCP copies held back, and UDP datagrams dropped, by
	// the service's bandwidth limit.
	Bandwidth int64 `json:"bandwidth"`
	// Throughput counts the same for the global throughput limit, for the
	// traffic of this service.
	Throughput int64 `json:"throughput"`
	// Sessions counts UDP sessions of this service evicted from the full
	// session table (or at the service's maxConns), and idle HTTP
	// connections of it closed to make room for a new connection at a
	// limit.
	Sessions int64 `json:"sessions"`
	// GlobalConns counts connections of this service refused at the
	// ceiling on the connections of all services (see Engine.Limits).
	GlobalConns int64 `json:"globalConns"`
	// Abuse counts connections refused because the client's address was
	// in the penalty box after repeated HTTP/2 abuse (docs/layer7.md).
	Abuse int64 `json:"abuse"`
}

// RSStatus is the state and counters of one real server.
type RSStatus struct {
	// ID is the real server's configuration ID.
	ID int `json:"id"`
	// Address is the real server's address.
	Address string `json:"address"`
	// Port is the real server's port.
	Port int `json:"port"`
	// Weight is the configured weight.
	Weight int `json:"weight"`
	// Enabled is the configured enabled flag.
	Enabled bool `json:"enabled"`
	// State is RSEnabled, RSDisabled or RSDown.
	State string `json:"state"`
	// Health is the health-check state: "Unknown", "Up" or "Down".
	Health string `json:"health"`
	// ActiveConns is the number of connections open or being dialled now.
	ActiveConns int64 `json:"activeConns"`
	// TotalConns is the number of connections established.
	TotalConns int64 `json:"totalConns"`
	// BytesIn is the bytes sent to the real server on behalf of clients.
	BytesIn int64 `json:"bytesIn"`
	// BytesOut is the bytes received from the real server for clients.
	BytesOut int64 `json:"bytesOut"`
	// Failures is the number of failed dials.
	Failures int64 `json:"failures"`
	// Rates are the per-second rates over the last second.
	Rates backend.Rates `json:"rates"`
	// Status is the real server's status by health checks and drain:
	// health.StatusUp, StatusDown, StatusDisabled, StatusDraining or
	// StatusUnknown (waiting for its first check, or not checked); ""
	// before the health monitor has the configuration.
	Status string `json:"status,omitempty"`
	// Reason says why Status is what it is, e.g. "tcp 127.0.0.5:80:
	// connection refused after 2 retries".
	Reason string `json:"reason,omitempty"`
	// LastCheck is when the last health check started; absent before the
	// first.
	LastCheck time.Time `json:"lastCheck,omitzero"`
	// Latency is the duration of the last health check (nanoseconds).
	Latency time.Duration `json:"latency,omitempty"`
}

// Status returns the state and counters of every top-level virtual service
// of the configuration in force, in configuration order. It takes no lock
// that the data path uses.
func (e *Engine) Status() []VSStatus {
	snap := e.snap.Load()
	out := make([]VSStatus, 0, len(snap.services))
	checks := map[int]*health.VSStatus{}
	subChecks := map[int]*health.VSStatus{}
	hs := e.Health()
	for i := range hs {
		if hs[i].Parent == 0 {
			checks[hs[i].ID] = &hs[i]
		} else {
			subChecks[hs[i].ID] = &hs[i]
		}
	}
	for _, s := range snap.services {
		vs := s.vs
		c := s.stats
		st := VSStatus{
			ID:          vs.ID,
			Address:     vs.Address,
			Port:        vs.Port,
			Protocol:    vs.Protocol,
			State:       s.state,
			Reason:      s.reason,
			ActiveConns: c.Active(),
			TotalConns:  c.Total(),
			BytesIn:     c.BytesIn(),
			BytesOut:    c.BytesOut(),
			Errors:      c.Errors(),
			Rates:       c.Rates(),
			LimitHits: LimitHits{
				MaxConns:    c.LimitHits(backend.LimitMaxConns),
				ConnsPerSec: c.LimitHits(backend.LimitConnRate),
				Bandwidth:   c.LimitHits(backend.LimitBandwidth),
				Throughput:  c.LimitHits(backend.LimitThroughput),
				Sessions:    c.LimitHits(backend.LimitSessions),
				GlobalConns: c.LimitHits(backend.LimitGlobalConns),
				Abuse:       c.LimitHits(backend.LimitAbuse),
			},
			RealServers: make([]RSStatus, 0, len(s.servers)),
		}
		available := 0
		for _, r := range s.servers {
			rs, up := realServerStatus(r)
			if up {
				available++
			}
			st.RealServers = append(st.RealServers, rs)
		}
		if s.table != nil {
			ps := s.table.Stats()
			st.Persistence = &ps
		}
		if hv := checks[vs.ID]; hv != nil {
			mergeHealth(&st, hv, drainingOf(s.servers))
		}
		if s.l7 != nil {
			st.L7 = l7Status(s, subChecks, &available)
		}
		if s.served() {
			e.socketStatus(s, &st, available)
		}
		out = append(out, st)
	}
	return out
}

// l7Status returns the layer-7 counters of s and adds the available real
// servers of its SubVSs to available.
func l7Status(s *service, checks map[int]*health.VSStatus, available *int) *L7Status {
	l := &L7Status{}
	if s.requests != nil {
		l.Requests, l.ActiveRequests, l.RequestRate = s.requests.Total(), s.requests.Active(), s.requests.Rates().ConnsPerSec
	}
	for _, sub := range s.subs {
		ss := SubVSStatus{ID: sub.vs.ID, NickName: sub.vs.NickName, Requests: sub.requests.Total(),
			ActiveRequests: sub.requests.Active(), RealServers: make([]RSStatus, 0, len(sub.servers))}
		for _, r := range sub.servers {
			rs, up := realServerStatus(r)
			if up {
				*available++
			}
			ss.RealServers = append(ss.RealServers, rs)
		}
		if hv := checks[sub.vs.ID]; hv != nil {
			tmp := VSStatus{RealServers: ss.RealServers}
			mergeHealth(&tmp, hv, drainingOf(sub.servers))
			ss.Health = tmp.Health
		}
		l.SubVSs = append(l.SubVSs, ss)
	}
	return l
}

// drainingOf returns the IDs of the real servers the data plane is
// draining, or nil.
func drainingOf(servers []realServer) map[int]bool {
	var draining map[int]bool
	for _, r := range servers {
		if r.srv != nil && r.srv.Draining() {
			if draining == nil {
				draining = map[int]bool{}
			}
			draining[r.rs.ID] = true
		}
	}
	return draining
}

// realServerStatus returns the status of one real server and whether it is
// enabled and not Down.
func realServerStatus(r realServer) (RSStatus, bool) {
	up := false
	rs := RSStatus{
		ID:      r.rs.ID,
		Address: r.rs.Address,
		Port:    r.rs.Port,
		Weight:  r.rs.Weight,
		Enabled: isEnabled(r.rs.Enabled),
		State:   RSDisabled,
		Health:  backend.HealthUnknown.String(),
	}
	if r.srv != nil {
		h := r.srv.Health()
		rs.Health = h.String()
		rs.ActiveConns = r.srv.Active()
		rs.TotalConns = r.srv.Total()
		rs.BytesIn = r.srv.BytesIn()
		rs.BytesOut = r.srv.BytesOut()
		rs.Failures = r.srv.Failures()
		rs.Rates = r.srv.Rates()
		if rs.Enabled {
			rs.State = RSEnabled
			if h == backend.HealthDown {
				rs.State = RSDown
			} else {
				up = true
			}
		}
	} else if rs.Enabled {
		rs.State = RSEnabled
	}
	return rs, up
}

// socketStatus fills in the sockets of a served service and turns its
// state Down when it cannot take connections.
func (e *Engine) socketStatus(s *service, st *VSStatus, available int) {
	var failed []string
	for _, ap := range s.listen {
		ss := SocketStatus{Address: ap.String(), Listening: true}
		if err := e.listeners.Err(listener.Key(s.network, ap)); err != nil {
			var oe *listener.OpenError
			if errors.As(err, &oe) {
				err = oe.Err
			}
			ss.Listening, ss.Error = false, err.Error()
			failed = append(failed, fmt.Sprintf("cannot listen on %s: %v", ap, err))
		}
		st.Sockets = append(st.Sockets, ss)
	}
	var reasons []string
	if len(failed) > 0 {
		reasons = append(reasons, strings.Join(failed, "; ")+" (retried every 5 s)")
		if len(failed) == len(s.listen) {
			st.State = StateDown
		}
	}
	if st.State == StateUp && available == 0 {
		st.State = StateDown
		reasons = append(reasons, "every enabled real server is Down")
	}
	if len(reasons) > 0 {
		if st.Reason != "" {
			reasons = append(reasons, st.Reason)
		}
		st.Reason = strings.Join(reasons, "; ")
	}
}

// mergeHealth adds the health monitor's view of a service to its status.
// draining holds the IDs of its real servers the data plane is draining.
func mergeHealth(st *VSStatus, hv *health.VSStatus, draining map[int]bool) {
	st.Check, st.Health, st.HealthReason = hv.Check, hv.Status, hv.Reason
	byID := make(map[int]*health.RSStatus, len(hv.RealServers))
	for i := range hv.RealServers {
		byID[hv.RealServers[i].ID] = &hv.RealServers[i]
	}
	for i := range st.RealServers {
		rs := &st.RealServers[i]
		h := byID[rs.ID]
		if h == nil || h.Address != rs.Address || h.Port != rs.Port {
			continue
		}
		rs.Status, rs.Reason, rs.LastCheck, rs.Latency = h.Status, h.Reason, h.LastCheck, h.Latency
		if draining[rs.ID] && rs.Status == health.StatusDisabled {
			// The health monitor sees the configuration; the data plane
			// knows the disabled server still drains.
			rs.Status, rs.Reason = health.StatusDraining, "disabled; draining until the drain time ends"
		}
	}
}
