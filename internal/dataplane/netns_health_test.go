//go:build linux

package dataplane

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/health"
	"github.com/fulcrum-lb/fulcrum/internal/netcfg"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// netnsHealth runs inside namespace F, after the traffic checks of
// netnsChild, with e and the real servers in S still serving: the health
// checks of a service with a default gateway carry its mark, so they
// reach 10.71.9.9 — which only the gateway's table routes to — and find
// it Up, the checks of a SubVS carry its parent service's mark, and the
// same real server checked by a service without a gateway is Down, as
// is the gateway service's once its gateway is taken away (the changed
// mark restarts the check).
func netnsHealth(t *testing.T, e *Engine, nw *netcfg.Network) {
	rs := func(id int, port int) config.RealServer {
		return config.RealServer{ID: id, Address: "10.71.9.9", Port: port, Weight: 1}
	}
	mk := func(gateway bool) *config.Config {
		gen := func(id, port int, r config.RealServer) config.VirtualService {
			v := vsOf(id, "10.71.1.1", port, r)
			v.Type, v.HealthCheck.Type = "gen", "tcp"
			return v
		}
		marked, unmarked := gen(8, 90, rs(81, 8080)), gen(9, 91, rs(91, 8080))
		l7 := vsOf(10, "10.71.1.1", 92)
		l7.Type, l7.DefaultGateway = "http", "10.71.2.2"
		l7.SubVSs = []config.VirtualService{{ID: 11, Type: "http", HealthCheck: config.HealthCheck{Type: "http"},
			RealServers: []config.RealServer{rs(111, 8081)}}}
		if gateway {
			marked.DefaultGateway = "10.71.2.2"
		}
		return conf(t, marked, unmarked, l7)
	}
	apply := func(cfg *config.Config) *netcfg.Plan {
		t.Helper()
		p, err := netcfg.Make(nw, cfg, netcfg.Caps{Managed: true})
		if err != nil {
			t.Fatal(err)
		}
		if err := e.ApplyPlan(cfg, p); err != nil {
			t.Fatal(err)
		}
		return p
	}
	// status returns the status of real server rs of service vs.
	status := func(vs, rs int) health.RSStatus {
		for _, v := range e.Health() {
			for _, r := range v.RealServers {
				if v.ID == vs && r.ID == rs {
					return r
				}
			}
		}
		return health.RSStatus{}
	}
	wait := func(what string, vs, rs int, want string) {
		t.Helper()
		var got health.RSStatus
		testkit.EventuallyState(t, 30*time.Second, func() (bool, string) {
			got = status(vs, rs)
			return got.Status == want && got.LastResult != "", got.Status + ": " + got.LastResult
		}, fmt.Sprintf("%s: real server %d of service %d %s", what, rs, vs, want))
		t.Logf("%s: %s: %s", what, got.Status, got.LastResult)
	}

	p := apply(mk(true))
	for id, want := range map[int]uint32{8: netcfg.GatewayMarkBase, 9: 0, 10: netcfg.GatewayMarkBase} {
		if got := p.Service(id).Mark; got != want {
			t.Fatalf("plan of service %d: mark %#x, want %#x", id, got, want)
		}
	}
	wait("checked with the gateway's mark", 8, 81, health.StatusUp)
	wait("a SubVS checked with its service's mark", 11, 111, health.StatusUp)
	wait("the same real server checked without a mark", 9, 91, health.StatusDown)
	if r := status(9, 91); !strings.Contains(r.LastResult, "network is unreachable") {
		t.Errorf("unmarked check: %q, want network is unreachable", r.LastResult)
	}

	apply(mk(false))
	wait("the gateway taken away", 8, 81, health.StatusDown)
	apply(mk(true))
	wait("the gateway given back", 8, 81, health.StatusUp)
}
