package dataplane

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/listener"
	"github.com/fulcrum-lb/fulcrum/internal/status"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

func TestApplyServes(t *testing.T) {
	a, b := startTag(t, "a"), startTag(t, "b")
	e := newEngine(t)
	port := testkit.FreePort(t, "127.0.0.1")
	mustApply(t, e, conf(t, vsOf(1, "127.0.0.1", port, rsOf(11, a, 1000), rsOf(12, b, 1000))))
	if port == a.port || port == b.port {
		t.Fatal("test setup: VS and RS ports equal")
	}
	addr := hostPort("127.0.0.1", port)
	var tags []string
	for range 4 {
		tag, err := askOnce(addr)
		if err != nil {
			t.Fatal(err)
		}
		tags = append(tags, tag)
	}
	if got := strings.Join(tags, ""); got != "abab" && got != "baba" {
		t.Errorf("rr over two servers answered %s", got)
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return e.Status()[0].ActiveConns == 0 }, "connections to end")
	st := e.Status()
	if len(st) != 1 {
		t.Fatalf("Status has %d services", len(st))
	}
	vs := st[0]
	if vs.ID != 1 || vs.State != status.Up || vs.Reason != "" || vs.TotalConns != 4 || vs.Address != "127.0.0.1" || vs.Port != port || vs.Protocol != "tcp" {
		t.Errorf("VS status %+v", vs)
	}
	msgLen := int64(len("hello\n"))
	if vs.BytesIn != 4*msgLen || vs.BytesOut != 4*(msgLen+2) {
		t.Errorf("VS bytes in/out %d/%d, want %d/%d", vs.BytesIn, vs.BytesOut, 4*msgLen, 4*(msgLen+2))
	}
	for i, r := range vs.RealServers {
		if r.TotalConns != 2 || r.ActiveConns != 0 || r.State != status.Enabled || !r.Enabled || r.Weight != 1000 || r.Failures != 0 {
			t.Errorf("RS %d status %+v", i, r)
		}
	}
	js, err := json.Marshal(vs)
	if err != nil {
		t.Fatal(err)
	}
	for _, key := range []string{`"id":1`, `"activeConns"`, `"totalConns"`, `"bytesIn"`, `"bytesOut"`, `"realServers"`, `"failures"`, `"state":"Up"`} {
		if !strings.Contains(string(js), key) {
			t.Errorf("status JSON lacks %s: %s", key, js)
		}
	}
	if e.Snapshot().Generation() != 1 {
		t.Errorf("generation %d, want 1", e.Snapshot().Generation())
	}
}

func TestExtraPorts(t *testing.T) {
	a := startTag(t, "a")
	e := newEngine(t)
	p1, p2 := testkit.FreePort(t, "127.0.0.3"), testkit.FreePort(t, "127.0.0.3")
	vs := vsOf(1, "127.0.0.3", p1, rsOf(11, a, 1))
	vs.ExtraPorts = fmt.Sprint(p2)
	mustApply(t, e, conf(t, vs))
	for _, p := range []int{p1, p2} {
		if tag, err := askOnce(hostPort("127.0.0.3", p)); err != nil || tag != "a" {
			t.Errorf("port %d: %q, %v", p, tag, err)
		}
	}
}

func TestStatusStates(t *testing.T) {
	a := startTag(t, "a")
	disabledRS := rsOf(21, a, 1)
	disabledRS.Enabled = config.Bool(false)
	for _, tc := range []struct {
		name       string
		mutate     func(vs *config.VirtualService)
		state      status.State
		reason     string // substring; "" means none at all
		serves     bool
		rsDisabled bool
	}{
		{"up", func(*config.VirtualService) {}, status.Up, "", true, false},
		{"disabled", func(vs *config.VirtualService) { vs.Enabled = config.Bool(false) }, status.Disabled, "", false, false},
		{"udp", func(vs *config.VirtualService) { vs.Protocol = "udp"; vs.Transparent = nil; vs.SubnetOriginating = nil },
			status.Up, "not applied: transparency", false, false},
		{"no enabled rs", func(vs *config.VirtualService) { vs.RealServers = []config.RealServer{disabledRS} },
			status.Down, "no enabled real server", true, true},
		{"no rs", func(vs *config.VirtualService) { vs.RealServers = nil }, status.Down, "no enabled real server", true, false},
		{"http", func(vs *config.VirtualService) { vs.Type = "http" }, status.Up, "", true, false},
		{"tls", func(vs *config.VirtualService) { vs.Type = "tls" }, status.Up, "type tls (STARTTLS) is served as a layer-4", true, false},
		{"http bandwidth", func(vs *config.VirtualService) { vs.Type = "http"; vs.Limits.Bandwidth = 1000 }, status.Up, "", true, false},
		{"fixed", func(vs *config.VirtualService) { vs.Schedule = "fixed" }, status.Up,
			scheduleNote("fixed"), true, false},
		{"adaptive", func(vs *config.VirtualService) { vs.Schedule = "adaptive" }, status.Up,
			scheduleNote("adaptive"), true, false},
		{"wlc", func(vs *config.VirtualService) { vs.Schedule = "wlc" }, status.Up, "", true, false},
		{"persistence", func(vs *config.VirtualService) { vs.Persistence.Mode = "src" }, status.Up, "", true, false},
		{"persistence needs http", func(vs *config.VirtualService) {
			vs.Type, vs.Persistence = "http", config.Persistence{Mode: "cookie-src", Cookie: "sid"}
		}, status.Up, "", true, false},
		{"persistence ssl", func(vs *config.VirtualService) { vs.Persistence.Mode = "ssl" }, status.Up,
			"persistence ssl needs the TLS session ID of the ClientHello", true, false},
		{"subvs", func(vs *config.VirtualService) {
			vs.Type = "http"
			vs.RealServers = nil
			vs.SubVSs = []config.VirtualService{{ID: 9, RealServers: []config.RealServer{rsOf(22, a, 1)}}}
		}, status.Up, "", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t)
			port := testkit.FreePort(t, "127.0.0.1")
			vs := vsOf(7, "127.0.0.1", port, rsOf(21, a, 1))
			tc.mutate(&vs)
			mustApply(t, e, conf(t, vs))
			st := e.Status()
			if len(st) != 1 {
				t.Fatalf("Status has %d services", len(st))
			}
			if st[0].State != tc.state {
				t.Errorf("state %s, want %s", st[0].State, tc.state)
			}
			if (tc.reason == "") != (st[0].Reason == "") || !strings.Contains(st[0].Reason, tc.reason) {
				t.Errorf("reason %q, want %q", st[0].Reason, tc.reason)
			}
			if tc.rsDisabled && (st[0].RealServers[0].State != status.Disabled || st[0].RealServers[0].Enabled) {
				t.Errorf("disabled RS status %+v", st[0].RealServers[0])
			}
			k := listener.Key("tcp", mustAP(t, "127.0.0.1", port))
			if serving := e.listeners.Addr(k) != nil; serving != tc.serves {
				t.Errorf("listening %v, want %v", serving, tc.serves)
			}
			if vs.Protocol == "udp" && e.listeners.PacketConn(listener.Key("udp", mustAP(t, "127.0.0.1", port))) == nil {
				t.Error("udp service has no socket")
			}
		})
	}
}

func TestDownServiceClosesConnections(t *testing.T) {
	e := newEngine(t)
	port := testkit.FreePort(t, "127.0.0.1")
	mustApply(t, e, conf(t, vsOf(1, "127.0.0.1", port)))
	c := mustDial(t, hostPort("127.0.0.1", port))
	if !c.closed() {
		t.Error("connection to a service without real servers was not closed")
	}
}

func TestDialFailureRetriedOnAnotherRS(t *testing.T) {
	a := startTag(t, "a")
	dead := config.RealServer{ID: 12, Address: "127.0.0.1", Port: testkit.FreePort(t, "127.0.0.1"), Weight: 1}
	e := newEngine(t)
	port := testkit.FreePort(t, "127.0.0.1")
	vs := vsOf(1, "127.0.0.1", port, dead, rsOf(11, a, 1))
	vs.HealthCheck.Type = "none" // a tcp check would take the dead RS Down before the dials this test counts
	mustApply(t, e, conf(t, vs))
	for i := range 4 {
		if tag, err := askOnce(hostPort("127.0.0.1", port)); err != nil || tag != "a" {
			t.Fatalf("connection %d: %q, %v", i, tag, err)
		}
	}
	rs := e.Status()[0].RealServers
	if rs[0].Failures == 0 || rs[0].TotalConns != 0 || rs[1].TotalConns != 4 {
		t.Errorf("dead RS %+v, live RS %+v", rs[0], rs[1])
	}
}

func TestIdleTimeoutFromConfig(t *testing.T) {
	a := startTag(t, "a")
	e := newEngine(t)
	p1, p2 := testkit.FreePort(t, "127.0.0.1"), testkit.FreePort(t, "127.0.0.1")
	quick := vsOf(1, "127.0.0.1", p1, rsOf(11, a, 1))
	quick.Idletime = 1
	cfg := conf(t, quick, vsOf(2, "127.0.0.1", p2, rsOf(21, a, 1)))
	cfg.Options.ConnTimeout = 77
	mustApply(t, e, cfg)
	svcs := e.Snapshot().services
	if got := svcs[0].handler.Config().IdleTimeout; got != time.Second {
		t.Errorf("idle timeout of VS 1 = %v, want 1s", got)
	}
	if got := svcs[1].handler.Config().IdleTimeout; got != 77*time.Second {
		t.Errorf("idle timeout of VS 2 = %v, want ConnTimeout 77s", got)
	}
	c := mustDial(t, hostPort("127.0.0.1", p1))
	if _, err := c.ask("x"); err != nil {
		t.Fatal(err)
	}
	if !c.closed() {
		t.Error("idle connection not closed by a 1 s idle timeout within 10 s")
	}
}

func TestHitlessReload(t *testing.T) {
	a, b := startTag(t, "a"), startTag(t, "b")
	e := newEngine(t)
	p1, p2 := testkit.FreePort(t, "127.0.0.1"), testkit.FreePort(t, "127.0.0.2")
	addr1, addr2 := hostPort("127.0.0.1", p1), hostPort("127.0.0.2", p2)
	key1 := listener.Key("tcp", mustAP(t, "127.0.0.1", p1))

	mustApply(t, e, conf(t, vsOf(1, "127.0.0.1", p1, rsOf(11, a, 1000))))
	ln := e.listeners.Listener(key1)
	kept := mustDial(t, addr1)
	if tag, err := kept.ask("1"); err != nil || tag != "a" {
		t.Fatalf("before reload: %q %v", tag, err)
	}
	srvA := e.backends.Get(backend.Key{VS: 1, Address: "127.0.0.1", Port: a.port})

	// RS weight changed, RS b added, VS 2 added.
	mustApply(t, e, conf(t,
		vsOf(1, "127.0.0.1", p1, rsOf(11, a, 5), rsOf(12, b, 1)),
		vsOf(2, "127.0.0.2", p2, rsOf(21, b, 1))))
	if e.listeners.Listener(key1) != ln {
		t.Error("the socket of an unchanged VS was replaced")
	}
	if tag, err := kept.ask("2"); err != nil || tag != "a" {
		t.Fatalf("established connection after reload: %q %v", tag, err)
	}
	if got := e.backends.Get(backend.Key{VS: 1, Address: "127.0.0.1", Port: a.port}); got != srvA || got.Weight() != 5 {
		t.Errorf("RS a's *Server replaced or weight not updated (%p vs %p)", got, srvA)
	}
	if tag, err := askOnce(addr2); err != nil || tag != "b" {
		t.Errorf("new VS 2: %q %v", tag, err)
	}

	// Only b behind VS 1: new connections follow, the kept one stays on a.
	mustApply(t, e, conf(t,
		vsOf(1, "127.0.0.1", p1, rsOf(12, b, 1)),
		vsOf(2, "127.0.0.2", p2, rsOf(21, b, 1))))
	for range 3 {
		if tag, err := askOnce(addr1); err != nil || tag != "b" {
			t.Fatalf("new connection after reload: %q %v, want b", tag, err)
		}
	}
	if tag, err := kept.ask("3"); err != nil || tag != "a" {
		t.Fatalf("established connection to a removed RS: %q %v", tag, err)
	}
	if d := e.backends.Draining(); len(d) != 1 || d[0].Port != a.port {
		t.Errorf("draining %v, want RS a", d)
	}

	// VS 1 removed: it stops accepting, the kept connection carries on.
	mustApply(t, e, conf(t, vsOf(2, "127.0.0.2", p2, rsOf(21, b, 1))))
	if _, err := dial(addr1); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("removed VS still accepts: %v", err)
	}
	if tag, err := kept.ask("4"); err != nil || tag != "a" {
		t.Fatalf("established connection of a removed VS: %q %v", tag, err)
	}
	kept.c.Close()
	testkit.Eventually(t, 10*time.Second, func() bool { return len(e.backends.Draining()) == 0 }, "removed RS to be released")
	if st := e.Status(); len(st) != 1 || st[0].ID != 2 {
		t.Errorf("Status after removal: %+v", st)
	}
}

func TestReloadKeepsCounters(t *testing.T) {
	a := startTag(t, "a")
	e := newEngine(t)
	port := testkit.FreePort(t, "127.0.0.1")
	addr := hostPort("127.0.0.1", port)
	mustApply(t, e, conf(t, vsOf(1, "127.0.0.1", port, rsOf(11, a, 1))))
	for range 3 {
		if _, err := askOnce(addr); err != nil {
			t.Fatal(err)
		}
	}
	mustApply(t, e, conf(t, vsOf(1, "127.0.0.1", port, rsOf(11, a, 9))))
	if _, err := askOnce(addr); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 10*time.Second, func() bool {
		st := e.Status()[0]
		return st.TotalConns == 4 && st.RealServers[0].TotalConns == 4 && st.RealServers[0].Weight == 9
	}, "counters")

}

func TestReloadWithoutGaps(t *testing.T) {
	a, b := startTag(t, "a"), startTag(t, "b")
	e := newEngine(t)
	p1, p2 := testkit.FreePort(t, "127.0.0.1"), testkit.FreePort(t, "127.0.0.2")
	addr1 := hostPort("127.0.0.1", p1)
	key1 := listener.Key("tcp", mustAP(t, "127.0.0.1", p1))
	configs := []*config.Config{
		conf(t, vsOf(1, "127.0.0.1", p1, rsOf(11, a, 1000), rsOf(12, b, 1000))),
		conf(t, vsOf(1, "127.0.0.1", p1, rsOf(11, a, 3), rsOf(12, b, 1)), vsOf(2, "127.0.0.2", p2, rsOf(21, b, 1))),
		conf(t, vsOf(1, "127.0.0.1", p1, rsOf(12, b, 1))),
		func() *config.Config {
			vs := vsOf(1, "127.0.0.1", p1, rsOf(11, a, 1), rsOf(12, b, 1))
			vs.Schedule = "lc"
			return conf(t, vs, vsOf(2, "127.0.0.2", p2, rsOf(21, a, 1)))
		}(),
	}
	mustApply(t, e, configs[0])
	ln := e.listeners.Listener(key1)

	var ok, failed atomic.Int64
	var firstErr atomic.Value
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for range 2 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			deadline := time.Now().Add(60 * time.Second)
			for i := 0; i < 100000 && time.Now().Before(deadline); i++ {
				select {
				case <-stop:
					return
				default:
				}
				if _, err := askOnce(addr1); err != nil {
					failed.Add(1)
					firstErr.CompareAndSwap(nil, err)
					continue
				}
				ok.Add(1)
			}
		}()
	}
	for i := range 20 {
		time.Sleep(20 * time.Millisecond)
		mustApply(t, e, configs[(i+1)%len(configs)])
	}
	time.Sleep(20 * time.Millisecond)
	close(stop)
	wg.Wait()
	if failed.Load() != 0 {
		t.Errorf("%d of %d connections failed across 20 reloads; first: %v", failed.Load(), failed.Load()+ok.Load(), firstErr.Load())
	}
	if ok.Load() == 0 {
		t.Error("no connection made during the reloads")
	}
	if e.listeners.Listener(key1) != ln {
		t.Error("the socket of VS 1 was replaced during the reloads")
	}
	if g := e.Snapshot().Generation(); g != 21 {
		t.Errorf("generation %d, want 21", g)
	}
	t.Logf("%d connections across 20 reloads, 0 failed", ok.Load())
}

func TestBindFailureMarksOnlyThatService(t *testing.T) {
	a := startTag(t, "a")
	e := newEngine(t)
	p1 := testkit.FreePort(t, "127.0.0.1")
	addr1 := hostPort("127.0.0.1", p1)
	mustApply(t, e, conf(t, vsOf(1, "127.0.0.1", p1, rsOf(11, a, 1000))))
	kept := mustDial(t, addr1)
	if _, err := kept.ask("x"); err != nil {
		t.Fatal(err)
	}

	foreign := testkit.Listen(t, "127.0.0.2")
	busy := foreign.Addr().(*net.TCPAddr).Port
	pFree := testkit.FreePort(t, "127.0.0.4")

	// VS 3's port is taken by another program, VS 4's address is not
	// local (TEST-NET-1: binding it sends nothing): Apply applies the rest.
	mustApply(t, e, conf(t,
		vsOf(1, "127.0.0.1", p1, rsOf(11, a, 7)),
		vsOf(2, "127.0.0.4", pFree, rsOf(21, a, 1)),
		vsOf(3, "127.0.0.2", busy, rsOf(31, a, 1)),
		vsOf(4, "192.0.2.1", 80, rsOf(41, a, 1))))
	if tag, err := askOnce(hostPort("127.0.0.4", pFree)); err != nil || tag != "a" {
		t.Errorf("new VS 2 beside the failed ones: %q %v", tag, err)
	}
	if tag, err := kept.ask("y"); err != nil || tag != "a" {
		t.Errorf("kept connection: %q %v", tag, err)
	}
	st := e.Status()
	if st[0].State != status.Up || st[0].RealServers[0].Weight != 7 || st[1].State != status.Up {
		t.Errorf("VS 1 and 2: %+v %+v", st[0], st[1])
	}
	want3 := fmt.Sprintf("cannot listen on 127.0.0.2:%d: bind: address already in use (retried every 5 s)", busy)
	if st[2].State != status.Down || st[2].Reason != want3 {
		t.Errorf("VS 3: state %s reason %q; want Down, %q", st[2].State, st[2].Reason, want3)
	}
	if len(st[2].Sockets) != 1 || st[2].Sockets[0].Listening || st[2].Sockets[0].Error != "bind: address already in use" {
		t.Errorf("VS 3 sockets %+v", st[2].Sockets)
	}
	if st[3].State != status.Down || !strings.Contains(st[3].Reason, "cannot listen on 192.0.2.1:80: bind: cannot assign requested address") {
		t.Errorf("VS 4: state %s reason %q", st[3].State, st[3].Reason)
	}

	// Once the other program lets the port go, VS 3 starts by itself.
	foreign.Close()
	testkit.Eventually(t, 10*time.Second, func() bool { return e.Status()[2].State == status.Up }, "VS 3 to listen after the port was freed")
	if tag, err := askOnce(hostPort("127.0.0.2", busy)); err != nil || tag != "a" {
		t.Errorf("VS 3 after retry: %q %v", tag, err)
	}
	if st := e.Status()[2]; st.Reason != "" || !st.Sockets[0].Listening {
		t.Errorf("VS 3 status after retry: %+v", st)
	}
}

func TestApplyRejectsBadInput(t *testing.T) {
	a := startTag(t, "a")
	e := newEngine(t)
	port := testkit.FreePort(t, "127.0.0.1")
	good := conf(t, vsOf(1, "127.0.0.1", port, rsOf(11, a, 1)))
	mustApply(t, e, good)
	bad := func(f func(c *config.Config)) *config.Config {
		c := good.Clone()
		f(c)
		return c
	}
	for _, tc := range []struct {
		name string
		cfg  *config.Config
		want string
	}{
		{"nil", nil, "nil configuration"},
		{"schedule", bad(func(c *config.Config) { c.VirtualServices[0].Schedule = "bogus" }),
			`virtualServices[id=1]: schedule: unknown scheduling method "bogus"`},
		{"address", bad(func(c *config.Config) { c.VirtualServices[0].Address = "nowhere" }),
			`virtualServices[id=1]: address "nowhere" is not an IP address`},
		{"no id", bad(func(c *config.Config) { c.VirtualServices[0].ID = 0 }), "virtualServices[0]: id must be assigned"},
		{"same socket", bad(func(c *config.Config) {
			vs := c.VirtualServices[0]
			vs.ID = 2
			c.VirtualServices = append(c.VirtualServices, vs)
		}), fmt.Sprintf("virtualServices[id=2] 127.0.0.1:%d: also the address of virtualServices[id=1]", port)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := e.Apply(tc.cfg)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("Apply: %v; want %q", err, tc.want)
			}
			if g := e.Snapshot().Generation(); g != 1 {
				t.Errorf("generation %d after failed Apply", g)
			}
			if tag, err := askOnce(hostPort("127.0.0.1", port)); err != nil || tag != "a" {
				t.Errorf("service after failed Apply: %q %v", tag, err)
			}
		})
	}
}

func TestClose(t *testing.T) {
	a := startTag(t, "a")
	e := New(Options{Logger: quiet})
	port := testkit.FreePort(t, "127.0.0.1")
	mustApply(t, e, conf(t, vsOf(1, "127.0.0.1", port, rsOf(11, a, 1))))
	var conns []*client
	for range 3 {
		c := mustDial(t, hostPort("127.0.0.1", port))
		if _, err := c.ask("x"); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	for i, c := range conns {
		if !c.closed() {
			t.Errorf("connection %d open after Close", i)
		}
	}
	if _, err := dial(hostPort("127.0.0.1", port)); err == nil {
		t.Error("still accepting after Close")
	}
	if err := e.Apply(conf(t)); !errors.Is(err, ErrClosed) {
		t.Errorf("Apply after Close: %v", err)
	}
	if err := e.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	// goleak in TestMain checks that no goroutine is left.
}

// scheduleNote is the Status note of a scheduling method: none once the
// balance package implements it.
func scheduleNote(method string) string {
	if balance.Implemented(method) {
		return ""
	}
	return fmt.Sprintf("scheduling method %s not yet implemented; using %s", method, balance.FallbackMethod)
}
