package webui

import (
	"encoding/json"
	"net/http"
	"strconv"

	"github.com/fulcrum-lb/fulcrum/internal/admin"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control/edit"
	"github.com/fulcrum-lb/fulcrum/internal/status"
)

func itoa(n int) string { return strconv.Itoa(n) }

// vsCard is one service on the dashboard and in the services list.
type vsCard struct {
	// VS is the service's configuration.
	VS *config.VirtualService
	// Name is its nickname, or address:port.
	Name string
	// Status is the data plane's status; HasStatus is false when the data
	// plane reports none (a SubVS).
	Status    status.VS
	HasStatus bool
	// RS counts the real servers by state.
	RS []stateCount
	// Sub marks a SubVS; Parent is its parent's ID.
	Sub    bool
	Parent int
}

// displayName is how a service is named in lists (edit.Name, as in the
// changes' summaries).
func displayName(v *config.VirtualService) string { return edit.Name(v) }

// endpoint joins an address and port, bracketing IPv6 addresses.
func endpoint(addr string, port int) string { return edit.Endpoint(addr, port) }

// cards lists the services (SubVSs after their parent) with their status.
func (s *Server) cards(cfg *config.Config, withSubs bool) []vsCard {
	st := s.statusByID()
	var out []vsCard
	for i := range cfg.VirtualServices {
		v := &cfg.VirtualServices[i]
		c := vsCard{VS: v, Name: displayName(v)}
		c.Status, c.HasStatus = st[v.ID]
		c.RS = rsCounts(c.Status)
		out = append(out, c)
		if !withSubs {
			continue
		}
		for j := range v.SubVSs {
			sv := &v.SubVSs[j]
			out = append(out, vsCard{VS: sv, Name: displayName(sv), Sub: true, Parent: v.ID})
		}
	}
	return out
}

// dashData is the dashboard's data.
type dashData struct {
	Cards        []vsCard
	Services     int
	RealServers  int
	ActiveConns  int64
	RuntimeError string
}

func (s *Server) dashboard(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	snap := s.ctl.Current()
	d := dashData{Cards: s.cards(snap.Config, false), RuntimeError: s.ctl.RuntimeError()}
	for _, c := range d.Cards {
		d.Services++
		d.RealServers += len(c.VS.RealServers)
		d.ActiveConns += c.Status.ActiveConns
	}
	s.render(w, r, p, http.StatusOK, "dashboard", view{Title: "Dashboard", Nav: "dashboard", Revision: snap.Revision, Data: d})
}

// metricsJSON answers the dashboard's poll: the time series of connections
// and throughput, in total and per service, and every service's state.
func (s *Server) metricsJSON(w http.ResponseWriter, r *http.Request, p admin.Principal) {
	list := s.readStatus()
	s.metrics.observe(s.now(), list)
	d := s.metrics.doc()
	d.Revision = s.ctl.Current().Revision
	d.Status = make([]liveVS, 0, len(list))
	for _, v := range list {
		d.Status = append(d.Status, liveVS{ID: v.ID, State: v.State, StateCls: stateClass(v.State), Reason: v.Reason,
			Conns: v.ActiveConns, RS: rsCounts(v)})
	}
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_ = json.NewEncoder(w).Encode(d)
}
