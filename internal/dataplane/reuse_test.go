package dataplane

import (
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// compiledService returns the compiled service with VS ID id in force.
func compiledService(t *testing.T, e *Engine, id int) *service {
	t.Helper()
	for _, s := range e.Snapshot().services {
		if s.vs.ID == id {
			return s
		}
	}
	t.Fatalf("no service %d in force", id)
	return nil
}

// TestReuseUnchangedServices checks that an Apply compiles only the
// services it changes: the others keep their picker and handler, and
// still serve; a change of the global options recompiles every service.
func TestReuseUnchangedServices(t *testing.T) {
	a, b := startTag(t, "a"), startTag(t, "b")
	e := newEngine(t)
	p1, p2 := testkit.FreePort(t, "127.0.0.1"), testkit.FreePort(t, "127.0.0.1")
	build := func(weight int, mutate func(*config.Config)) *config.Config {
		c := conf(t, vsOf(1, "127.0.0.1", p1, rsOf(11, a, 1), rsOf(12, b, 1)),
			vsOf(2, "127.0.0.1", p2, rsOf(21, a, weight), rsOf(22, b, 1)))
		if mutate != nil {
			mutate(c)
		}
		return c
	}
	mustApply(t, e, build(1, nil))
	s1, s2 := compiledService(t, e, 1), compiledService(t, e, 2)

	mustApply(t, e, build(5, nil)) // only service 2 changes
	n1, n2 := compiledService(t, e, 1), compiledService(t, e, 2)
	if n1.picker != s1.picker || n1.handler != s1.handler || !n1.reused {
		t.Error("the unchanged service was recompiled")
	}
	if n2.picker == s2.picker || n2.reused {
		t.Error("the changed service kept its old picker")
	}
	if got := n2.servers[0].srv.Settings().Weight; got != 5 {
		t.Errorf("weight of the changed real server = %d, want 5", got)
	}
	for _, port := range []int{p1, p2} {
		c := mustDial(t, hostPort("127.0.0.1", port))
		if _, err := c.ask("ping"); err != nil {
			t.Errorf("port %d: %v", port, err)
		}
		c.c.Close()
	}

	mustApply(t, e, build(5, func(c *config.Config) { c.Options.ConnTimeout = 300 }))
	if m1 := compiledService(t, e, 1); m1.picker == n1.picker || m1.reused {
		t.Error("a change of the global options did not recompile the unchanged service")
	}
}

// TestReuseKeepsChecks checks that a service kept from the generation in
// force still takes part in the candidate's checks: a new service on its
// socket is refused, and the refusal leaves the kept service serving.
func TestReuseKeepsChecks(t *testing.T) {
	a := startTag(t, "a")
	e := newEngine(t)
	p1 := testkit.FreePort(t, "127.0.0.1")
	mustApply(t, e, conf(t, vsOf(1, "127.0.0.1", p1, rsOf(11, a, 1))))
	before := compiledService(t, e, 1)

	bad := config.Default()
	bad.VirtualServices = []config.VirtualService{vsOf(1, "127.0.0.1", p1, rsOf(11, a, 1)), vsOf(2, "127.0.0.1", p1, rsOf(21, a, 1))}
	bad.SetDefaults() // not validated: the data plane's own check must refuse it
	err := e.Apply(bad)
	if err == nil || !strings.Contains(err.Error(), "also the address of") {
		t.Fatalf("Apply of two services on one socket: %v", err)
	}
	if after := compiledService(t, e, 1); after != before {
		t.Error("a refused Apply changed the service in force")
	}
	c := mustDial(t, hostPort("127.0.0.1", p1))
	defer c.c.Close()
	if got, err := c.ask("ping"); err != nil || got != "a" {
		t.Errorf("after the refusal: %q, %v", got, err)
	}
}

// TestReuseUDPService checks that an unchanged UDP service keeps its
// compiled parts and its session across an Apply that adds another
// service, and that a change to it recompiles it.
func TestReuseUDPService(t *testing.T) {
	a := startUAS(t, "127.0.0.37", "uas-a")
	e := newEngine(t)
	port := testkit.FreeUDPPort(t, "127.0.0.38")
	tag := startTag(t, "l4")
	p2 := testkit.FreePort(t, "127.0.0.38")
	build := func(other bool, weight int) *config.Config {
		vs := config.VirtualService{ID: 1, Address: "127.0.0.38", Port: port, Protocol: "udp", HealthCheck: config.HealthCheck{Type: "none"},
			RealServers: []config.RealServer{{ID: 11, Address: "127.0.0.37", Port: a.port, Weight: weight}}}
		vss := []config.VirtualService{vs}
		if other {
			vss = append(vss, vsOf(2, "127.0.0.38", p2, rsOf(21, tag, 1)))
		}
		return conf(t, vss...)
	}
	mustApply(t, e, build(false, 1))
	before := compiledService(t, e, 1)
	vip := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.38"), uint16(port))
	phone, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer phone.Close()
	if resp, _ := sipExchange(t, phone, vip, "OPTIONS", "c1", 1); sipHeader(resp, "Server") != "uas-a" {
		t.Fatalf("answer %q", resp)
	}

	mustApply(t, e, build(true, 1))
	after := compiledService(t, e, 1)
	if !after.reused || after.uhandler != before.uhandler || after.picker != before.picker {
		t.Error("the unchanged UDP service was recompiled")
	}
	if n := e.Status()[0].ActiveConns; n != 1 {
		t.Errorf("%d sessions after the Apply, want the one kept", n)
	}
	if resp, _ := sipExchange(t, phone, vip, "OPTIONS", "c1", 2); sipHeader(resp, "Server") != "uas-a" {
		t.Fatalf("answer after the Apply %q", resp)
	}
	if n := e.Status()[0].TotalConns; n != 1 {
		t.Errorf("%d sessions started, want 1", n)
	}

	mustApply(t, e, build(true, 5))
	if changed := compiledService(t, e, 1); changed.reused || changed.uhandler == before.uhandler {
		t.Error("the changed UDP service was reused")
	}
}
