package api

import (
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/control"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/store"
)

// TestNetworkAPI walks the network endpoints on a controller that does not
// manage the host (the API tests run without privileges): the settings
// of Fulcrum itself change, with a confirm window; settings of the host
// are refused with 422 naming the field; If-Match, dryRun, confirm,
// history and links.
func TestNetworkAPI(t *testing.T) {
	e := newEnv(t)
	t.Cleanup(e.ctl.Close)
	r := e.must(req{method: "GET", path: "/api/v1/network"}, http.StatusOK)
	var nb networkBody
	r.json(t, &nb)
	if r.header.Get("ETag") != `"0"` || nb.Revision != 0 || nb.Pending || nb.Managed || nb.Reason == "" || nb.Network == nil {
		t.Fatalf("GET /network at first: %s", r.body)
	}

	// Refused: host settings while unmanaged, bad input, unknown keys.
	for _, tc := range []struct{ body, path string }{
		{`{"interfaces":[{"name":"eth0","addresses":["10.0.0.5/24"]}]}`, "network"},
		{`{"interfaces":[{"name":"eth0","mtu":20}]}`, "network.interfaces[0].mtu"},
		{`{"interfaces":[{"name":"eth0.1","parent":"eth0","vlan":4095}]}`, "network.interfaces[0].vlan"},
		{`{"confirmSeconds":1}`, "network.confirmSeconds"},
		{`{"mtu":1500}`, "mtu"},
	} {
		r := e.must(req{method: "PUT", path: "/api/v1/network", body: tc.body}, http.StatusUnprocessableEntity)
		var eb errorBody
		r.json(t, &eb)
		if len(eb.Fields) == 0 || eb.Fields[0].Path != tc.path {
			t.Errorf("PUT %s: %s; want a field error at %s", tc.body, r.body, tc.path)
		}
	}
	// Dry run.
	r = e.must(req{method: "PUT", path: "/api/v1/network?dryRun=true", body: `{"confirmSeconds":5,"keepOnStop":true}`}, http.StatusOK)
	var cr netChangeResult
	r.json(t, &cr)
	if cr.Committed || len(cr.Diff) != 2 || cr.Revision != 0 || e.ctl.Network().Revision != 0 {
		t.Fatalf("dry run: %s", r.body)
	}
	// A change with a confirm window.
	r = e.must(req{method: "PUT", path: "/api/v1/network", body: `{"confirmSeconds":5,"keepOnStop":true}`,
		header: map[string]string{"If-Match": `"0"`}}, http.StatusOK)
	cr = netChangeResult{}
	r.json(t, &cr)
	if !cr.Committed || cr.Revision != 1 || cr.Deadline == nil || r.header.Get("ETag") != `"1"` ||
		cr.Summary != "+ confirmSeconds: 5; + keepOnStop: true" {
		t.Fatalf("PUT /network: %s", r.body)
	}
	r = e.must(req{method: "GET", path: "/api/v1/network"}, http.StatusOK)
	nb = networkBody{}
	r.json(t, &nb)
	if !nb.Pending || nb.Deadline == nil || nb.SecondsLeft < 1 || nb.SecondsLeft > 5 || !nb.Network.KeepOnStop {
		t.Fatalf("GET /network while pending: %s", r.body)
	}
	// A stale If-Match.
	r = e.must(req{method: "PUT", path: "/api/v1/network", body: `{}`, header: map[string]string{"If-Match": `"0"`}}, http.StatusPreconditionFailed)
	if r.header.Get("ETag") != `"1"` {
		t.Errorf("412 without the current revision: %v", r.header)
	}
	// Confirm: a wrong revision, none, then the right one in the body.
	e.must(req{method: "POST", path: "/api/v1/network/confirm?revision=7"}, http.StatusNotFound)
	e.must(req{method: "POST", path: "/api/v1/network/confirm", body: `{}`}, http.StatusBadRequest)
	r = e.must(req{method: "POST", path: "/api/v1/network/confirm", body: `{"revision":1}`}, http.StatusOK)
	nb = networkBody{}
	r.json(t, &nb)
	if nb.Pending || nb.Revision != 1 {
		t.Fatalf("after confirm: %s", r.body)
	}
	if cur, err := e.st.NetworkCurrent(); err != nil || !cur.Confirmed {
		t.Fatalf("stored after confirm: %+v, %v", cur, err)
	}
	// A change confirmed by the query.
	e.must(req{method: "PUT", path: "/api/v1/network", body: `{"confirmSeconds":5}`}, http.StatusOK)
	e.must(req{method: "POST", path: "/api/v1/network/confirm?revision=2"}, http.StatusOK)
	// A change left unconfirmed is rolled back after 5 s.
	e.must(req{method: "PUT", path: "/api/v1/network", body: `{"confirmSeconds":5,"adminAddress":"10.0.0.5:8443"}`}, http.StatusOK)
	deadline := time.Now().Add(15 * time.Second)
	for e.ctl.Network().Revision != 4 && time.Now().Before(deadline) {
		time.Sleep(100 * time.Millisecond)
	}
	r = e.must(req{method: "GET", path: "/api/v1/network/history"}, http.StatusOK)
	var h netHistory
	r.json(t, &h)
	if h.Current != 4 || len(h.Revisions) != 4 || h.Revisions[0].Source != "system" ||
		h.Revisions[0].Summary != "rolled back: revision 3 was not confirmed within 5 s" || h.Revisions[1].User != "bal" {
		t.Fatalf("history after a rollback: %s", r.body)
	}
	if e.ctl.Network().Network.AdminAddress != "" {
		t.Error("the unconfirmed admin address stayed")
	}
	audit, err := e.st.Audit(0, 100)
	if err != nil {
		t.Fatal(err)
	}
	var actions []string
	for _, a := range audit {
		if strings.HasPrefix(a.Action, "network") {
			actions = append(actions, a.User+" "+a.Action)
		}
	}
	if strings.Join(actions, ",") != "system network-rollback,bal network,bal network-confirm,bal network,bal network-confirm,bal network" {
		t.Errorf("audit of network changes: %q", actions)
	}
	// Links: the host is not managed.
	r = e.must(req{method: "GET", path: "/api/v1/network/links"}, http.StatusConflict)
	if !strings.Contains(string(r.body), "not managed") {
		t.Errorf("links unmanaged: %s", r.body)
	}
	// Operators may read, not change.
	hash, err := bcrypt.GenerateFromPassword([]byte("operator password 1"), bcrypt.MinCost)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.st.PutUser(config.User{Name: "op", Role: config.RoleOperator, PasswordHash: string(hash)}); err != nil {
		t.Fatal(err)
	}
	e.must(req{method: "GET", path: "/api/v1/network", user: "op", pass: "operator password 1"}, http.StatusOK)
	e.must(req{method: "PUT", path: "/api/v1/network", body: `{}`, user: "op", pass: "operator password 1"}, http.StatusForbidden)
}

// TestNetworkGolden pins the answer of GET /network for a two-armed
// network with a plan made for a configuration that uses a VIP range, a
// per-service gateway, SNAT and transparency.
func TestNetworkGolden(t *testing.T) {
	n := &netcfg.Network{
		Hostname: "lb1",
		DNS:      netcfg.DNS{Servers: []string{"192.0.2.53"}, Search: []string{"example.net"}},
		Interfaces: []netcfg.Interface{
			{Name: "eth0", Addresses: []string{"192.0.2.10/24"}, VIPRanges: []string{"198.51.100.0/28"}},
			{Name: "eth1", Addresses: []string{"10.1.0.10/24"}, MTU: 9000},
		},
		Gateway:        "192.0.2.1",
		Routes:         []netcfg.Route{{Destination: "10.20.0.0/16", Gateway: "10.1.0.1"}},
		ConfirmSeconds: 30,
	}
	if err := n.Validate(); err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Options.SNAT = true
	cfg.VirtualServices = []config.VirtualService{
		{ID: 1, Address: "198.51.100.5", Port: 80, RealServers: []config.RealServer{{ID: 1, Address: "10.1.0.21", Port: 80}}},
		{ID: 2, Address: "192.0.2.20", Port: 443, DefaultGateway: "10.1.0.1", Transparent: config.Bool(true),
			RealServers: []config.RealServer{{ID: 2, Address: "10.20.0.7", Port: 443}}},
	}
	cfg.SetDefaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	plan, err := netcfg.Make(n, cfg, netcfg.Caps{Managed: true})
	if err != nil {
		t.Fatal(err)
	}
	at := time.Date(2026, 12, 7, 22, 0, 0, 0, time.UTC)
	snap := control.NetSnapshot{Revision: 3, Network: n, Plan: plan, Deadline: at.Add(30 * time.Second),
		Change: store.Change{Revision: 3, Time: at, User: "bal", Source: "api", RemoteAddr: "192.0.2.99", Summary: "~ hostname: \"lb0\" -> \"lb1\""}}
	got, err := json.MarshalIndent(networkView(snap, at.Add(12*time.Second)), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "network.golden", append(got, '\n'))

	// Unmanaged: no plan parts, the reason.
	plan, err = netcfg.Unmanaged(cfg, "Fulcrum runs without CAP_NET_ADMIN")
	if err != nil {
		t.Fatal(err)
	}
	got, err = json.MarshalIndent(networkView(control.NetSnapshot{Network: &netcfg.Network{}, Plan: plan}, at), "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	checkGolden(t, "network-unmanaged.golden", append(got, '\n'))
}
