package dataplane

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/health"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
	"github.com/fulcrum-lb/fulcrum/internal/status"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// rsServer is a real server on a fixed address that a test can stop (its
// listener closes; connections already open live on) and start again.
type rsServer struct {
	tag, addr string
	port      int
	mu        sync.Mutex
	ln        net.Listener
	wg        sync.WaitGroup
}

// startRS starts a tag server (see startTag) on addr and a free port.
func startRS(t testing.TB, addr, tag string) *rsServer {
	t.Helper()
	s := &rsServer{tag: tag, addr: addr, port: testkit.FreePort(t, addr)}
	s.up(t)
	t.Cleanup(func() {
		s.down()
		s.wg.Wait()
	})
	return s
}

// up (re)opens the listener.
func (s *rsServer) up(t testing.TB) {
	t.Helper()
	ln := testkit.ListenAt(t, hostPort(s.addr, s.port))
	s.mu.Lock()
	s.ln = ln
	s.mu.Unlock()
	s.wg.Add(1)
	go func() {
		defer s.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			s.wg.Add(1)
			go func() {
				defer s.wg.Done()
				defer c.Close()
				_ = c.SetDeadline(time.Now().Add(30 * time.Second))
				tagLines(s.tag)(c)
			}()
		}
	}()
}

// down closes the listener: new connections are refused.
func (s *rsServer) down() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.ln != nil {
		s.ln.Close()
		s.ln = nil
	}
}

func (s *rsServer) rs(id int) config.RealServer {
	return config.RealServer{ID: id, Address: s.addr, Port: s.port, Weight: 1}
}

// healthEngine returns an Engine whose health-check second lasts unit.
func healthEngine(t testing.TB, unit time.Duration) *Engine {
	t.Helper()
	e := New(Options{Logger: quiet, Health: health.Options{Logger: quiet, Unit: unit}})
	t.Cleanup(func() { e.Close() })
	return e
}

// rsStatus returns the status of real server id of service vs.
func rsStatus(e *Engine, vs, id int) status.RS {
	for _, s := range e.Status() {
		if s.ID != vs {
			continue
		}
		for _, r := range s.RealServers {
			if r.ID == id {
				return r
			}
		}
	}
	return status.RS{}
}

// dialFrom connects to addr from the local address src.
func dialFrom(src, addr string) (*client, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	c, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return &client{c: c, r: bufio.NewReader(c)}, nil
}

// askFrom asks over a new connection from src and closes it.
func askFrom(src, addr string) (string, error) {
	c, err := dialFrom(src, addr)
	if err != nil {
		return "", err
	}
	defer c.c.Close()
	return c.ask("hello")
}

// TestHealthDownDropAndBack stops a real server: its tcp health check
// takes it Down, its open connections are dropped (dropOnFail), new
// connections avoid it; started again it comes back Up and gets
// connections again.
func TestHealthDownDropAndBack(t *testing.T) {
	a, b := startRS(t, "127.0.0.71", "a"), startRS(t, "127.0.0.72", "b")
	e := healthEngine(t, 20*time.Millisecond) // interval 9 → 180 ms, timeout 4 → 80 ms
	port := testkit.FreePort(t, "127.0.0.70")
	cfg := conf(t, vsOf(1, "127.0.0.70", port, a.rs(11), b.rs(12)))
	cfg.Options.DropOnFail = true
	mustApply(t, e, cfg)
	addr := hostPort("127.0.0.70", port)
	testkit.Eventually(t, 10*time.Second, func() bool {
		return rsStatus(e, 1, 11).Status == health.StatusUp && rsStatus(e, 1, 12).Status == health.StatusUp
	}, "both real servers Up")

	var onB []*client
	for i := range 6 {
		c := mustDial(t, addr)
		tag, err := c.ask(fmt.Sprint("m", i))
		if err != nil {
			t.Fatal(err)
		}
		if tag == "b" {
			onB = append(onB, c)
		}
	}
	if len(onB) == 0 {
		t.Fatal("rr sent no connection to b")
	}

	b.down()
	testkit.Eventually(t, 10*time.Second, func() bool { return rsStatus(e, 1, 12).Status == health.StatusDown }, "b Down")
	if r := rsStatus(e, 1, 12); r.State != status.Down || r.Reason == "" {
		t.Errorf("b status %+v, want state Down with a reason", r)
	}
	for i, c := range onB {
		if !c.closed() {
			t.Errorf("connection %d to b not dropped", i)
		}
	}
	for i := range 10 {
		if tag, err := askOnce(addr); err != nil || tag != "a" {
			t.Fatalf("connection %d while b is Down: %q, %v", i, tag, err)
		}
	}
	if n := e.Snapshot().services[0].servers[1].srv.Failures(); n != 0 {
		t.Errorf("%d dials to b while it was Down", n)
	}

	b.up(t)
	testkit.Eventually(t, 10*time.Second, func() bool { return rsStatus(e, 1, 12).Status == health.StatusUp }, "b Up again")
	seen := map[string]bool{}
	for range 10 {
		tag, err := askOnce(addr)
		if err != nil {
			t.Fatal(err)
		}
		seen[tag] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Errorf("after b came back, connections went to %v", seen)
	}
	ev := e.Events(0, 1)
	var down, up bool
	for _, x := range ev {
		down = down || (x.RS == 12 && x.To == health.StatusDown)
		up = up || (x.RS == 12 && x.To == health.StatusUp && x.From == health.StatusDown)
	}
	if !down || !up {
		t.Errorf("events %+v lack b's Down and return", ev)
	}
	st := e.Status()[0]
	if st.Health != health.StatusUp || st.Check != "tcp" {
		t.Errorf("service health %q check %q", st.Health, st.Check)
	}
}

// clientIPs are the source addresses of the persistence tests.
func clientIPs() []string {
	var ips []string
	for i := 10; i <= 60; i++ {
		ips = append(ips, fmt.Sprintf("127.0.0.%d", i))
	}
	return ips
}

// TestSourcePersistenceAcrossReloads keeps 200 client connections from 51
// source addresses on their real servers across 20 reloads (rr would
// move them), then stops one real server: only its clients move.
func TestSourcePersistenceAcrossReloads(t *testing.T) {
	rss := []*rsServer{startRS(t, "127.0.0.81", "a"), startRS(t, "127.0.0.82", "b"), startRS(t, "127.0.0.83", "c")}
	e := healthEngine(t, 20*time.Millisecond)
	port := testkit.FreePort(t, "127.0.0.80")
	addr := hostPort("127.0.0.80", port)
	build := func(i int) *config.Config {
		vs := vsOf(1, "127.0.0.80", port, rss[0].rs(11), rss[1].rs(12), rss[2].rs(13))
		vs.Persistence = config.Persistence{Mode: "src", Timeout: 600}
		vs.Idletime = 100 + i // a change on every reload
		vs.RealServers[0].Weight = 1 + i%3
		return conf(t, vs)
	}
	mustApply(t, e, build(0))
	testkit.Eventually(t, 10*time.Second, func() bool {
		for id := 11; id <= 13; id++ {
			if rsStatus(e, 1, id).Status != health.StatusUp {
				return false
			}
		}
		return true
	}, "real servers Up")

	ips := clientIPs()
	where := map[string]string{}
	count := map[string]int{}
	for _, ip := range ips {
		tag, err := askFrom(ip, addr)
		if err != nil {
			t.Fatal(err)
		}
		where[ip] = tag
		count[tag]++
	}
	if len(count) != 3 {
		t.Fatalf("clients spread over %v, want all three", count)
	}
	conns := 0
	for r := 1; r <= 20; r++ {
		mustApply(t, e, build(r))
		for j := range 10 {
			ip := ips[(r*10+j)%len(ips)]
			tag, err := askFrom(ip, addr)
			if err != nil {
				t.Fatal(err)
			}
			conns++
			if tag != where[ip] {
				t.Fatalf("reload %d: client %s went to %s, was on %s", r, ip, tag, where[ip])
			}
		}
	}
	if st := e.Status()[0].Persistence; st == nil || st.Entries != len(ips) || st.Hits < uint64(conns) {
		t.Errorf("persistence stats %+v, want %d entries and at least %d hits", st, len(ips), conns)
	}

	rss[2].down()
	testkit.Eventually(t, 10*time.Second, func() bool { return rsStatus(e, 1, 13).Status == health.StatusDown }, "c Down")
	moved := 0
	for _, ip := range ips {
		tag, err := askFrom(ip, addr)
		if err != nil {
			t.Fatal(err)
		}
		switch {
		case where[ip] == "c" && tag == "c":
			t.Errorf("client %s still sent to c, which is Down", ip)
		case where[ip] == "c":
			moved++
			where[ip] = tag
		case tag != where[ip]:
			t.Errorf("client %s of %s moved to %s when c went Down", ip, where[ip], tag)
		}
	}
	if moved != count["c"] {
		t.Errorf("%d clients moved, want c's %d", moved, count["c"])
	}
	// The moved clients stay where they went.
	for _, ip := range ips {
		if tag, err := askFrom(ip, addr); err != nil || tag != where[ip] {
			t.Errorf("client %s: %q, %v; want %s", ip, tag, err, where[ip])
		}
	}
	t.Logf("%d connections across 20 reloads kept their real server; %d clients of c moved", conns, moved)
}

// TestPortFollowing: a client persisted on :80 of a service is sent to
// the same real server on the :443 service that follows it.
func TestPortFollowing(t *testing.T) {
	addrs := []string{"127.0.0.91", "127.0.0.92"}
	var web, tls []*rsServer
	for i, a := range addrs {
		web = append(web, startRS(t, a, fmt.Sprint("web", i)))
		tls = append(tls, startRS(t, a, fmt.Sprint("tls", i)))
	}
	e := newEngine(t)
	ports := testkit.FreePorts(t, "127.0.0.90", 2)
	vs80 := vsOf(1, "127.0.0.90", ports[0], web[0].rs(11), web[1].rs(12))
	vs443 := vsOf(2, "127.0.0.90", ports[1], tls[0].rs(21), tls[1].rs(22))
	for _, vs := range []*config.VirtualService{&vs80, &vs443} {
		vs.Persistence = config.Persistence{Mode: "src", Timeout: 600}
		vs.HealthCheck = config.HealthCheck{Type: "none"}
	}
	vs443.FollowVSID = 1
	mustApply(t, e, conf(t, vs80, vs443))
	ips := clientIPs()[:20]
	seen := map[string]bool{}
	for _, ip := range ips {
		w, err := askFrom(ip, hostPort("127.0.0.90", ports[0]))
		if err != nil {
			t.Fatal(err)
		}
		seen[w] = true
		s, err := askFrom(ip, hostPort("127.0.0.90", ports[1]))
		if err != nil {
			t.Fatal(err)
		}
		if strings.TrimPrefix(w, "web") != strings.TrimPrefix(s, "tls") {
			t.Errorf("client %s: %s on :80 but %s on :443", ip, w, s)
		}
	}
	if len(seen) != 2 {
		t.Errorf("clients went to %v, want both real servers", seen)
	}
	st := e.PersistStats()
	if len(st) != 1 || st[0].VS != 1 || st[0].Entries != len(ips) {
		t.Errorf("tables %+v, want one table of VS 1 with %d entries", st, len(ips))
	}
}

// TestSIPPersistence sends two calls from one client address through the
// UDP proxy with udpsip persistence: each call's later sessions (new
// client sockets) go where its Call-ID is stuck, not where rr would send
// them.
func TestSIPPersistence(t *testing.T) {
	uas := []*sipUAS{startUAS(t, "127.0.0.101", "uas-a"), startUAS(t, "127.0.0.102", "uas-b")}
	e := newEngine(t)
	port := testkit.FreeUDPPort(t, "127.0.0.100")
	vs := config.VirtualService{ID: 1, Address: "127.0.0.100", Port: port, Protocol: "udp", Idletime: 30,
		HealthCheck: config.HealthCheck{Type: "none"}, Persistence: config.Persistence{Mode: "udpsip", Timeout: 600}}
	for i, u := range uas {
		vs.RealServers = append(vs.RealServers, config.RealServer{ID: 11 + i, Address: fmt.Sprintf("127.0.0.%d", 101+i), Port: u.port, Weight: 1})
	}
	mustApply(t, e, conf(t, vs))
	vip := mustAP(t, "127.0.0.100", port)
	phone := func() *net.UDPConn {
		c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 50)})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	call := func(c *net.UDPConn, method, id string, cseq int) string {
		resp, _ := sipExchange(t, c, vip, method, id, cseq)
		if got := sipHeader(resp, "Call-ID"); got != id {
			t.Fatalf("answer with Call-ID %q, want %q", got, id)
		}
		return sipHeader(resp, "Server")
	}
	first := map[string]string{"call-A@test": call(phone(), "INVITE", "call-A@test", 1), "call-B@test": call(phone(), "INVITE", "call-B@test", 1)}
	if first["call-A@test"] == first["call-B@test"] {
		t.Fatalf("rr sent both calls to %s", first["call-A@test"])
	}
	// New sessions, in the other order and several times: rr alone would
	// alternate; the table keeps each call on its server.
	for i := range 4 {
		for _, id := range []string{"call-B@test", "call-A@test", "call-A@test"} {
			if got := call(phone(), "BYE", id, 2+i); got != first[id] {
				t.Errorf("round %d: %s answered by %s, stuck to %s", i, id, got, first[id])
			}
		}
	}
	if st := e.Status()[0]; st.Persistence == nil || st.Persistence.Entries != 2 || strings.Contains(st.Reason, "persistence") {
		t.Errorf("status reason %q, persistence %+v; want no persistence note and 2 entries", st.Reason, st.Persistence)
	}
}

// TestPassiveFailures: with options.health.passiveFailures, failed dials
// on live traffic take a real server Down before its active check would.
func TestPassiveFailures(t *testing.T) {
	a, b := startRS(t, "127.0.0.111", "a"), startRS(t, "127.0.0.112", "b")
	e := healthEngine(t, 0) // real seconds: the active check waits 9 s between checks
	port := testkit.FreePort(t, "127.0.0.110")
	cfg := conf(t, vsOf(1, "127.0.0.110", port, a.rs(11), b.rs(12)))
	cfg.Options.Health.PassiveFailures = 2
	mustApply(t, e, cfg)
	testkit.Eventually(t, 10*time.Second, func() bool { return rsStatus(e, 1, 12).Status == health.StatusUp }, "b Up")
	b.down()
	addr := hostPort("127.0.0.110", port)
	for i := range 6 {
		if tag, err := askOnce(addr); err != nil || tag != "a" {
			t.Fatalf("connection %d: %q, %v", i, tag, err)
		}
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return rsStatus(e, 1, 12).Status == health.StatusDown }, "b Down by passive checks")
	if r := rsStatus(e, 1, 12); !strings.Contains(r.Reason, "passive") {
		t.Errorf("reason %q, want the passive check's", r.Reason)
	}
	if srv := e.Server(backend.Key{VS: 1, Address: "127.0.0.112", Port: b.port}); srv == nil || srv.Health() != backend.HealthDown {
		t.Errorf("data plane health of b not Down")
	}
}

// TestDrainKeepsPersistedClients: a disabled real server with a drain
// time keeps its persisted clients until the drain ends; others go
// elsewhere.
func TestDrainKeepsPersistedClients(t *testing.T) {
	a, b := startRS(t, "127.0.0.121", "a"), startRS(t, "127.0.0.122", "b")
	e := newEngine(t)
	port := testkit.FreePort(t, "127.0.0.120")
	addr := hostPort("127.0.0.120", port)
	build := func(bEnabled bool) *config.Config {
		vs := vsOf(1, "127.0.0.120", port, a.rs(11), b.rs(12))
		vs.Persistence = config.Persistence{Mode: "src", Timeout: 600}
		vs.HealthCheck = config.HealthCheck{Type: "none"}
		vs.RealServers[1].Enabled = config.Bool(bEnabled)
		c := conf(t, vs)
		c.Options.DrainTime = 60
		return c
	}
	mustApply(t, e, build(true))
	var onB string
	var keep *client
	for _, ip := range clientIPs() {
		c, err := dialFrom(ip, addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.c.Close() })
		tag, err := c.ask("x")
		if err != nil {
			t.Fatal(err)
		}
		if tag == "b" {
			onB, keep = ip, c
			break
		}
	}
	if keep == nil {
		t.Fatal("no client on b")
	}
	mustApply(t, e, build(false))
	if r := rsStatus(e, 1, 12); r.Status != health.StatusDraining {
		t.Errorf("b status %q, want Draining", r.Status)
	}
	if tag, err := askFrom(onB, addr); err != nil || tag != "b" {
		t.Errorf("persisted client of draining b: %q, %v", tag, err)
	}
	if tag, err := askFrom("127.0.0.61", addr); err != nil || tag != "a" {
		t.Errorf("new client: %q, %v; want a", tag, err)
	}
	mustApply(t, e, build(true))
	srv := e.Server(backend.Key{VS: 1, Address: "127.0.0.122", Port: b.port})
	if srv == nil || srv.Draining() {
		t.Error("b still draining after it was enabled again")
	}
}

// TestDLLatencyFromHealthChecks: the real servers of a dl service get
// the latency of their passed health checks as response-time samples.
func TestDLLatencyFromHealthChecks(t *testing.T) {
	a := startRS(t, "127.0.0.131", "a")
	e := healthEngine(t, 20*time.Millisecond)
	port := testkit.FreePort(t, "127.0.0.130")
	vs := vsOf(1, "127.0.0.130", port, a.rs(11))
	vs.Schedule = "dl"
	mustApply(t, e, conf(t, vs))
	srv := e.Server(backend.Key{VS: 1, Address: a.addr, Port: a.port})
	if srv == nil {
		t.Fatal("no server")
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return srv.Metrics().LatencySamples() >= 2 }, "latency samples from health checks")
	if d, ok := srv.Metrics().Latency(); !ok || d <= 0 {
		t.Errorf("latency %v, %v", d, ok)
	}
	if tag, err := askOnce(hostPort("127.0.0.130", port)); err != nil || tag != "a" {
		t.Errorf("dl service: %q, %v", tag, err)
	}
}

// TestAdaptivePollerStopsOnReload: the agent poller of an adaptive
// service ends when a reload replaces its generation.
func TestAdaptivePollerStopsOnReload(t *testing.T) {
	a := startRS(t, "127.0.0.141", "a")
	e := newEngine(t)
	port := testkit.FreePort(t, "127.0.0.140")
	build := func(method string) *config.Config {
		vs := vsOf(1, "127.0.0.140", port, a.rs(11))
		vs.Schedule = method
		vs.HealthCheck = config.HealthCheck{Type: "none"}
		c := conf(t, vs)
		c.Options.Adaptive.Port = a.port
		c.Options.Adaptive.Interval = 1
		return c
	}
	mustApply(t, e, build("rr"))
	before := goleak.IgnoreCurrent()
	for range 5 {
		mustApply(t, e, build("adaptive"))
		if tag, err := askOnce(hostPort("127.0.0.140", port)); err != nil || tag != "a" {
			t.Fatalf("adaptive service: %q, %v", tag, err)
		}
	}
	mustApply(t, e, build("rr"))
	// goleak.Find retries for a while before it reports.
	if err := goleak.Find(before, goleak.IgnoreTopFunction("github.com/fulcrum-lb/fulcrum/internal/health.(*Monitor).work")); err != nil {
		t.Errorf("goroutines left after adaptive was replaced: %v", err)
	}
}

// FuzzSIPHashKey: the UDP hash key of udpsip never panics, and what it
// returns is a SIP header whose Call-ID the Persister can read.
func FuzzSIPHashKey(f *testing.F) {
	f.Add([]byte("INVITE sip:a@b SIP/2.0\r\nCall-ID: x@y\r\n\r\nbody"))
	f.Add([]byte("SIP/2.0 200 OK\r\ni: abc\r\n"))
	f.Add([]byte("not sip"))
	f.Fuzz(func(t *testing.T, p []byte) {
		k := sipHashKey(p)
		if k == "" {
			return
		}
		if _, err := persist.CallID([]byte(k)); err != nil {
			t.Fatalf("hash key %q has no Call-ID: %v", k, err)
		}
		if len(k) > len(p) {
			t.Fatalf("hash key longer than the datagram")
		}
	})
}
