package api

import (
	"errors"
	"net/http"
	"slices"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// networkBody is the response of GET /network: the node's network
// settings, their revision, a pending confirm deadline, and what the
// current configuration needs of the host under them, as applied.
type networkBody struct {
	// Revision is the current network revision (also the ETag); 0 when
	// none was ever stored.
	Revision uint64 `json:"revision"`
	// Change says who made the revision, when and why.
	Change store.Change `json:"change"`
	// Network is the settings.
	Network *netcfg.Network `json:"network"`
	// Pending is true while the revision waits for its confirmation.
	Pending bool `json:"pending"`
	// Deadline is when a pending revision is rolled back unless confirmed
	// (POST /network/confirm).
	Deadline *time.Time `json:"deadline,omitempty"`
	// SecondsLeft is the time left until Deadline, in whole seconds.
	SecondsLeft int `json:"secondsLeft,omitempty"`
	// Managed is true when Fulcrum applies the settings to the host.
	Managed bool `json:"managed"`
	// Reason says why the host is not managed.
	Reason string `json:"reason,omitempty"`
	// Plan is what the current configuration needs of the host, as
	// applied.
	Plan planBody `json:"plan"`
}

// planBody is a netcfg.Plan as the API shows it.
type planBody struct {
	// VIPs are the service addresses Fulcrum added to interfaces.
	VIPs []planVIP `json:"vips"`
	// Gateways are the per-service default gateways.
	Gateways []planGateway `json:"gateways"`
	// SNAT are the source-NAT rules of the real servers' own connections.
	SNAT []planSNAT `json:"snat"`
	// Transparent is true when some service connects to its real servers
	// from its clients' addresses.
	Transparent bool `json:"transparent"`
	// Services holds, by virtual-service ID, what each service with a
	// gateway, transparency or a "not applied" note gets.
	Services []planService `json:"services"`
}

// planVIP is one VIP Fulcrum adds to an interface.
type planVIP struct {
	// Address is the VIP.
	Address string `json:"address"`
	// Interface is the interface it is on.
	Interface string `json:"interface"`
}

// planGateway is one per-service default gateway.
type planGateway struct {
	// Address is the gateway.
	Address string `json:"address"`
	// Interface is the interface whose subnet holds it.
	Interface string `json:"interface,omitempty"`
	// Table is its routing table; Mark the packet mark of its services'
	// server-side sockets.
	Table int    `json:"table"`
	Mark  uint32 `json:"mark"`
	// Sources are the VIPs whose replies leave through it.
	Sources []string `json:"sources"`
}

// planSNAT is one source-NAT rule.
type planSNAT struct {
	// Server is the real server; To the address its connections leave from.
	Server string `json:"server"`
	To     string `json:"to"`
}

// planService is what one virtual service gets.
type planService struct {
	// ID is the virtual service's ID.
	ID int `json:"id"`
	// Mark is the SO_MARK of its server-side sockets (0: none).
	Mark uint32 `json:"mark,omitempty"`
	// Transparent is true when its real servers see the clients' addresses.
	Transparent bool `json:"transparent,omitempty"`
	// Notes are its "not applied: …" sentences.
	Notes []string `json:"notes,omitempty"`
}

// netChangeResult is the response to a network change.
type netChangeResult struct {
	// Revision is the current network revision after the change.
	Revision uint64 `json:"revision"`
	// Committed is false for a dry run or a change that changed nothing.
	Committed bool `json:"committed"`
	// Summary describes the change.
	Summary string `json:"summary"`
	// Diff lists the changed settings.
	Diff []config.Difference `json:"diff"`
	// Deadline is when the change is rolled back unless confirmed (POST
	// /network/confirm); absent when nothing waits for a confirmation.
	Deadline *time.Time `json:"deadline,omitempty"`
}

// netConfirm is the body of POST /network/confirm.
type netConfirm struct {
	// Revision is the pending network revision to keep; also accepted as
	// ?revision=N.
	Revision uint64 `json:"revision"`
}

// netHistory is the response of GET /network/history.
type netHistory struct {
	// Current is the current network revision.
	Current uint64 `json:"current"`
	// Revisions are the network revisions' changes, newest first.
	Revisions []store.Change `json:"revisions"`
}

// linkList is the response of GET /network/links.
type linkList struct {
	// Links are the host's interfaces as the kernel has them.
	Links []netcfg.Link `json:"links"`
}

func (s *Server) getNetwork(w http.ResponseWriter, _ *http.Request) {
	snap := s.ctl.Network()
	setETag(w, snap.Revision)
	writeJSON(w, http.StatusOK, networkView(snap, time.Now()))
}

// networkView makes the body of GET /network from snap at now.
func networkView(snap control.NetSnapshot, now time.Time) networkBody {
	out := networkBody{Revision: snap.Revision, Change: snap.Change, Network: snap.Network,
		Plan: planBody{VIPs: []planVIP{}, Gateways: []planGateway{}, SNAT: []planSNAT{}, Services: []planService{}}}
	if !snap.Deadline.IsZero() {
		d := snap.Deadline.UTC()
		out.Pending, out.Deadline = true, &d
		out.SecondsLeft = max(0, int(snap.Deadline.Sub(now).Round(time.Second)/time.Second))
	}
	p := snap.Plan
	if p == nil {
		return out
	}
	out.Managed, out.Reason = p.Managed, p.Reason
	if p.Managed {
		out.Reason = ""
	}
	for _, v := range p.VIPs {
		out.Plan.VIPs = append(out.Plan.VIPs, planVIP{Address: v.Addr.String(), Interface: v.Interface})
	}
	for _, g := range p.Gateways {
		pg := planGateway{Address: g.Addr.String(), Interface: g.Interface, Table: g.Table, Mark: g.Mark, Sources: []string{}}
		for _, a := range g.Sources {
			pg.Sources = append(pg.Sources, a.String())
		}
		out.Plan.Gateways = append(out.Plan.Gateways, pg)
	}
	for _, r := range p.SNAT {
		out.Plan.SNAT = append(out.Plan.SNAT, planSNAT{Server: r.Server.String(), To: r.To.String()})
	}
	out.Plan.Transparent = p.Transparent
	ids := make([]int, 0, len(p.Services))
	for id := range p.Services {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	for _, id := range ids {
		sv := p.Services[id]
		out.Plan.Services = append(out.Plan.Services, planService{ID: id, Mark: sv.Mark, Transparent: sv.Transparent, Notes: sv.Notes})
	}
	return out
}

// putNetwork replaces the network settings. The change must be confirmed
// (POST /network/confirm) within the settings' confirm window, or it is
// rolled back; ?dryRun=true only validates and returns the diff.
func (s *Server) putNetwork(w http.ResponseWriter, r *http.Request) {
	base, check, err := ifMatch(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	dry, err := queryBool(r, "dryRun")
	if err != nil {
		s.fail(w, err)
		return
	}
	var n netcfg.Network
	if err := decodeBody(w, r, &n); err != nil {
		s.failNetwork(w, err)
		return
	}
	res, err := s.ctl.ApplyNetwork(control.NetChange{Base: base, CheckBase: check, Actor: actor(r), DryRun: dry,
		Summary: r.URL.Query().Get("summary"), Mutate: func(cur *netcfg.Network) error { *cur = *n.Clone(); return nil }})
	if err != nil {
		s.failNetwork(w, err)
		return
	}
	out := netChangeResult{Revision: res.Revision, Committed: res.Committed, Diff: res.Diff}
	if out.Diff == nil {
		out.Diff = []config.Difference{}
	}
	if res.Committed {
		out.Summary = s.ctl.Network().Change.Summary
	} else {
		out.Summary = control.Summarize(res.Diff)
	}
	if !res.Deadline.IsZero() {
		d := res.Deadline.UTC()
		out.Deadline = &d
	}
	setETag(w, res.Revision)
	writeJSON(w, http.StatusOK, out)
}

// confirmNetwork keeps the pending network revision named by the body's
// or the query's revision.
func (s *Server) confirmNetwork(w http.ResponseWriter, r *http.Request) {
	var body netConfirm
	if r.URL.Query().Has("revision") {
		n, err := queryUint(r, "revision", 0)
		if err != nil {
			s.fail(w, err)
			return
		}
		body.Revision = n
	} else if err := decodeBody(w, r, &body); err != nil {
		s.fail(w, err)
		return
	}
	if body.Revision == 0 {
		writeError(w, http.StatusBadRequest, "revision is required: the pending network revision to confirm (body {\"revision\": N} or ?revision=N)", nil)
		return
	}
	if err := s.ctl.ConfirmNetwork(body.Revision, actor(r)); err != nil {
		s.fail(w, err)
		return
	}
	snap := s.ctl.Network()
	setETag(w, snap.Revision)
	writeJSON(w, http.StatusOK, networkView(snap, time.Now()))
}

func (s *Server) networkHistory(w http.ResponseWriter, r *http.Request) {
	before, limit, err := page(r)
	if err != nil {
		s.fail(w, err)
		return
	}
	list, err := s.ctl.NetworkHistory(before, limit)
	if err != nil {
		s.fail(w, err)
		return
	}
	if list == nil {
		list = []store.Change{}
	}
	writeJSON(w, http.StatusOK, netHistory{Current: s.ctl.Network().Revision, Revisions: list})
}

func (s *Server) networkLinks(w http.ResponseWriter, _ *http.Request) {
	links, err := s.ctl.Links()
	if errors.Is(err, control.ErrUnmanaged) {
		writeError(w, http.StatusConflict, err.Error(), nil)
		return
	}
	if err != nil {
		s.fail(w, err)
		return
	}
	if links == nil {
		links = []netcfg.Link{}
	}
	writeJSON(w, http.StatusOK, linkList{Links: links})
}

// failNetwork answers a refused network change: invalid settings are 422
// with the fields; the rest as fail does (a host refusal is 422 there).
func (s *Server) failNetwork(w http.ResponseWriter, err error) {
	if fields, ok := config.IsErrors(err); ok {
		writeError(w, http.StatusUnprocessableEntity, "invalid network settings", fields)
		return
	}
	if errors.Is(err, control.ErrNoNetStore) {
		writeError(w, http.StatusConflict, err.Error(), nil)
		return
	}
	s.fail(w, err)
}
