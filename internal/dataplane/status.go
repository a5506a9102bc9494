package dataplane

import (
	"errors"
	"fmt"
	"strings"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/health"
	"github.com/fulcrum-lb/fulcrum/internal/listener"
	"github.com/fulcrum-lb/fulcrum/internal/status"
)

// Status returns the state and counters of every top-level virtual service
// of the configuration in force, in configuration order. It takes no lock
// that the data path uses.
func (e *Engine) Status() []status.VS {
	snap := e.snap.Load()
	out := make([]status.VS, 0, len(snap.services))
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
		st := status.VS{
			ID:          vs.ID,
			Address:     vs.Address,
			Port:        vs.Port,
			Protocol:    vs.Protocol,
			State:       s.state,
			Reason:      s.reason,
			Warnings:    s.warnings,
			ActiveConns: c.Active(),
			TotalConns:  c.Total(),
			BytesIn:     c.BytesIn(),
			BytesOut:    c.BytesOut(),
			Errors:      c.Errors(),
			Rates:       c.Rates(),
			Peaks:       counterPeaks(c),
			LimitHits: status.LimitHits{
				MaxConns:    c.LimitHits(backend.LimitMaxConns),
				ConnsPerSec: c.LimitHits(backend.LimitConnRate),
				Bandwidth:   c.LimitHits(backend.LimitBandwidth),
				Throughput:  c.LimitHits(backend.LimitThroughput),
				Sessions:    c.LimitHits(backend.LimitSessions),
				GlobalConns: c.LimitHits(backend.LimitGlobalConns),
				Abuse:       c.LimitHits(backend.LimitAbuse),
			},
			RealServers: make([]status.RS, 0, len(s.servers)),
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
func l7Status(s *service, checks map[int]*health.VSStatus, available *int) *status.L7 {
	l := &status.L7{}
	if s.requests != nil {
		l.Requests, l.ActiveRequests, l.RequestRate = s.requests.Total(), s.requests.Active(), s.requests.Rates().ConnsPerSec
		l.MaxActiveRequests = s.requests.MaxActive()
	}
	if s.http != nil {
		l.HTTP = httpStatus(s.http.Snapshot())
	}
	for _, sub := range s.subs {
		ss := status.SubVS{ID: sub.vs.ID, NickName: sub.vs.NickName, Requests: sub.requests.Total(),
			ActiveRequests: sub.requests.Active(), MaxActiveRequests: sub.requests.MaxActive(), RealServers: make([]status.RS, 0, len(sub.servers))}
		if sub.http != nil {
			ss.HTTP = httpStatus(sub.http.Snapshot())
		}
		for _, r := range sub.servers {
			rs, up := realServerStatus(r)
			if up {
				*available++
			}
			ss.RealServers = append(ss.RealServers, rs)
		}
		if hv := checks[sub.vs.ID]; hv != nil {
			tmp := status.VS{RealServers: ss.RealServers}
			mergeHealth(&tmp, hv, drainingOf(sub.servers))
			ss.Health, ss.UpDown = tmp.Health, hv.UpDown
		}
		l.SubVSs = append(l.SubVSs, ss)
	}
	return l
}

// httpStatus is the status model of a layer-7 service's or SubVS's
// request counters.
func httpStatus(h backend.HTTPSnapshot) status.HTTP {
	return status.HTTP{
		Requests:     h.Requests,
		Responses:    responses(h.Responses),
		ProxyErrors:  h.ProxyErrors,
		Aborted:      h.Aborted,
		Retries:      h.Retries,
		ClientAborts: h.ClientAborts, ServerAborts: h.ServerAborts, RequestErrors: h.Invalid,
		MaxRequestRate: h.MaxRequestRate, LastRequest: h.LastRequest, MaxTTFB: h.MaxTTFB, MaxDuration: h.MaxDuration,
		TTFB:     histogram(h.TTFB),
		Duration: histogram(h.Duration),
	}
}

// responses is the status model of counts by status class.
func responses(r [backend.NumClasses]int64) status.Responses {
	return status.Responses{C1xx: r[backend.Class1xx], C2xx: r[backend.Class2xx], C3xx: r[backend.Class3xx],
		C4xx: r[backend.Class4xx], C5xx: r[backend.Class5xx], Other: r[backend.ClassOther]}
}

// histogram is the status model of a duration histogram.
func histogram(h backend.HistogramSnapshot) status.Histogram {
	return status.Histogram{Counts: append([]uint64(nil), h.Counts[:]...), Count: h.Count, Sum: h.Sum.Seconds()}
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
func realServerStatus(r realServer) (status.RS, bool) {
	up := false
	rs := status.RS{
		ID:      r.rs.ID,
		Address: r.rs.Address,
		Port:    r.rs.Port,
		Weight:  r.rs.Weight,
		Enabled: isEnabled(r.rs.Enabled),
		State:   status.Disabled,
		Health:  healthState(backend.HealthUnknown),
	}
	if r.srv != nil {
		h := r.srv.Health()
		rs.Health = healthState(h)
		rs.ActiveConns = r.srv.Active()
		rs.TotalConns = r.srv.Total()
		rs.BytesIn = r.srv.BytesIn()
		rs.BytesOut = r.srv.BytesOut()
		rs.Failures = r.srv.Failures()
		rs.Rates = r.srv.Rates()
		rs.Requests = r.srv.Requests()
		rs.Responses = responses(r.srv.Responses())
		if d, ok := r.srv.Metrics().Latency(); ok {
			rs.ResponseTime = d
		}
		x := r.srv.Extra()
		rs.Peaks = status.Peaks{MaxConns: x.MaxActive, MaxConnRate: x.MaxConnRate, LastConn: x.LastConn}
		rs.Times = status.Times{Connect: x.ConnectTime, MaxConnect: x.MaxConnectTime, MaxResponse: x.MaxResponseTime,
			Total: x.TotalTime, MaxTotal: x.MaxTotalTime}
		rs.Reuses, rs.Redispatches, rs.ResponseErrors, rs.IdleConns = x.Reuses, x.Redispatches, x.ResponseErrors, x.Idle
		rs.ClientAborts, rs.ServerAborts = x.ClientAborts, x.ServerAborts
		if t, ok := r.srv.Metrics().AvailableSince(); ok {
			rs.AvailableSince = t
		}
		if rs.Enabled {
			rs.State = status.Enabled
			if h == backend.HealthDown {
				rs.State = status.Down
			} else {
				up = true
			}
		}
	} else if rs.Enabled {
		rs.State = status.Enabled
	}
	return rs, up
}

// socketStatus fills in the sockets of a served service and turns its
// state Down when it cannot take connections.
func (e *Engine) socketStatus(s *service, st *status.VS, available int) {
	var failed []string
	for _, ap := range s.listen {
		ss := status.Socket{Address: ap.String(), Listening: true}
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
			st.State = status.Down
		}
	}
	if st.State == status.Up && available == 0 {
		st.State = status.Down
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
func mergeHealth(st *status.VS, hv *health.VSStatus, draining map[int]bool) {
	st.Check, st.Health, st.HealthReason, st.UpDown = hv.Check, status.State(hv.Status), hv.Reason, hv.UpDown
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
		rs.Status, rs.Reason, rs.LastCheck, rs.Latency = status.State(h.Status), h.Reason, h.LastCheck, h.Latency
		rs.CheckFailures, rs.UpDown = h.CheckFailures, h.UpDown
		if draining[rs.ID] && rs.Status == status.Disabled {
			// The health monitor sees the configuration; the data plane
			// knows the disabled server still drains.
			rs.Status, rs.Reason = status.Draining, "disabled; draining until the drain time ends"
		}
	}
}

// healthState is the status model's word for a real server's health as
// the data plane acts on it.
func healthState(h backend.Health) status.State {
	switch h {
	case backend.HealthUp:
		return status.Up
	case backend.HealthDown:
		return status.Down
	}
	return status.Unknown
}

// counterPeaks is the status model of a counter set's maxima.
func counterPeaks(c *backend.Counters) status.Peaks {
	rate, last := c.Peaks()
	return status.Peaks{MaxConns: c.MaxActive(), MaxConnRate: rate, LastConn: last}
}
