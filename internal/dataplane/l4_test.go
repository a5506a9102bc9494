package dataplane

import (
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/l4"
	"github.com/fulcrum-lb/fulcrum/internal/status"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// peerServer answers each connection with the address it sees the
// connection come from, then closes it.
func peerServer(c net.Conn) { fmt.Fprintf(c, "%s\n", c.RemoteAddr()) }

// sinkServer reads and discards everything, counting it in n.
func sinkServer(n *atomic.Int64) func(c net.Conn) {
	return func(c net.Conn) {
		buf := make([]byte, 64<<10)
		for {
			k, err := c.Read(buf)
			n.Add(int64(k))
			if err != nil {
				return
			}
		}
	}
}

// seenFrom returns the peer address that a peerServer behind addr saw.
func seenFrom(t *testing.T, addr string) netip.Addr {
	t.Helper()
	c := mustDial(t, addr)
	line, err := c.r.ReadString('\n')
	if err != nil {
		t.Fatalf("%s: %v", addr, err)
	}
	ap, err := netip.ParseAddrPort(strings.TrimSpace(line))
	if err != nil {
		t.Fatalf("peer %q: %v", line, err)
	}
	return ap.Addr()
}

func TestSourceAddress(t *testing.T) {
	rs := testkit.StartTCP(t, "127.0.0.13", peerServer)
	kernel, err := l4.RouteSource(netip.MustParseAddr("127.0.0.13"))
	if err != nil {
		t.Fatal(err)
	}
	vip := netip.MustParseAddr("127.0.0.12")
	if kernel == vip {
		t.Fatal("test setup: the kernel's source towards the RS is the VIP")
	}
	port := testkit.FreePort(t, "127.0.0.12")
	for _, tc := range []struct {
		name          string
		global, perVS bool
		want          netip.Addr
	}{
		{"vip", false, false, vip},
		{"subnet per service", false, true, kernel},
		{"subnet global", true, false, kernel},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEngine(t)
			vs := vsOf(1, "127.0.0.12", port, config.RealServer{ID: 11, Address: "127.0.0.13", Port: rs.Port()})
			vs.SubnetOriginating = config.Bool(tc.perVS)
			cfg := conf(t, vs)
			cfg.Options.SubnetOriginating = tc.global
			mustApply(t, e, cfg)
			if got := seenFrom(t, hostPort("127.0.0.12", port)); got != tc.want {
				t.Errorf("real server saw %s, want %s", got, tc.want)
			}
		})
	}
}

func TestIPv6ServiceToIPv4Server(t *testing.T) {
	if ln, err := net.Listen("tcp6", "[::1]:0"); err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	} else {
		ln.Close()
	}
	a := startTag(t, "a")
	e := newEngine(t)
	port := testkit.FreePort(t, "::1")
	vs := vsOf(1, "::1", port, rsOf(11, a, 1))
	vs.SubnetOriginating = config.Bool(false) // VIP as source: not usable towards IPv4, so the kernel chooses
	mustApply(t, e, conf(t, vs))
	if tag, err := askOnce(hostPort("::1", port)); err != nil || tag != "a" {
		t.Fatalf("IPv6 VS: %q %v", tag, err)
	}
	if st := e.Status()[0]; st.Sockets[0].Address != fmt.Sprintf("[::1]:%d", port) || !st.Sockets[0].Listening {
		t.Errorf("sockets %+v", st.Sockets)
	}
}

func TestPortTranslationAndLeastConnection(t *testing.T) {
	// VS 5061 → RS 5062 as in the Lync SIP service, on addresses of their
	// own; free ports when those are taken on this machine.
	vsPort, rsPort := 5061, 5062
	probe := func(addr string, p int) bool {
		ln, err := net.Listen("tcp", hostPort(addr, p))
		if err != nil {
			return false
		}
		ln.Close()
		return true
	}
	if !probe("127.0.0.61", vsPort) {
		vsPort = testkit.FreePort(t, "127.0.0.61")
	}
	var servers []*testkit.TCPServer
	for i := range 3 {
		addr := fmt.Sprintf("127.0.0.%d", 62+i)
		p := rsPort
		if !probe(addr, p) {
			p = 0
		}
		s := testkit.ServeTCP(t, testkit.ListenAt(t, hostPort(addr, p)), tagLines(string(rune('a'+i))))
		servers = append(servers, s)
	}
	var rss []config.RealServer
	for i, s := range servers {
		rss = append(rss, config.RealServer{ID: 11 + i, Address: fmt.Sprintf("127.0.0.%d", 62+i), Port: s.Port()})
	}
	vs := vsOf(1, "127.0.0.61", vsPort, rss...)
	vs.Schedule = "lc"
	e := newEngine(t)
	mustApply(t, e, conf(t, vs))
	// Nine kept connections: least connection spreads them three each.
	count := map[string]int{}
	for range 9 {
		c := mustDial(t, hostPort("127.0.0.61", vsPort))
		tag, err := c.ask("hi")
		if err != nil {
			t.Fatal(err)
		}
		count[tag]++
	}
	if count["a"] != 3 || count["b"] != 3 || count["c"] != 3 {
		t.Errorf("least connection over 3 servers: %v", count)
	}
	for i, r := range e.Status()[0].RealServers {
		if r.ActiveConns != 3 || r.Port != servers[i].Port() {
			t.Errorf("RS %d: %+v", i, r)
		}
	}
}

func TestLongIdleTimeouts(t *testing.T) {
	t.Parallel()
	a := startTag(t, "a")
	e := newEngine(t)
	p1, p2, p3 := testkit.FreePort(t, "127.0.0.1"), testkit.FreePort(t, "127.0.0.1"), testkit.FreePort(t, "127.0.0.1")
	lync := vsOf(1, "127.0.0.1", p1, rsOf(11, a, 1))
	lync.Idletime = 1800
	day := vsOf(2, "127.0.0.1", p2, rsOf(21, a, 1))
	day.Idletime = 86400
	global := vsOf(3, "127.0.0.1", p3, rsOf(31, a, 1))
	mustApply(t, e, conf(t, lync, day, global))
	svcs := e.Snapshot().services
	for i, want := range []time.Duration{1800 * time.Second, 86400 * time.Second, 660 * time.Second} {
		if got := svcs[i].handler.Config().IdleTimeout; got != want {
			t.Errorf("VS %d idle timeout %v, want %v", i+1, got, want)
		}
	}
	// Connections idle for a while (longer than the watchdog's first
	// check would be if it misread the unit) are still open.
	var cs []*client
	for _, p := range []int{p1, p2, p3} {
		c := mustDial(t, hostPort("127.0.0.1", p))
		if _, err := c.ask("x"); err != nil {
			t.Fatal(err)
		}
		cs = append(cs, c)
	}
	time.Sleep(2500 * time.Millisecond)
	for i, c := range cs {
		if tag, err := c.ask("y"); err != nil || tag != "a" {
			t.Errorf("VS %d: idle connection closed early: %v", i+1, err)
		}
	}
}

// hold is a real server that reads and never answers: a server that hangs.
func hold(c net.Conn) { _, _ = io.Copy(io.Discard, c) }

// stillOpen reports whether c is open: a short read times out rather than
// ending.
func (c *client) stillOpen() bool {
	_ = c.c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	_, err := c.r.ReadByte()
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func TestRealServerOutOfService(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name       string
		disable    bool // true: disabled by configuration; false: health check Down
		dropOnFail bool
		dropAtEnd  bool
		drainTime  int    // seconds; below Validate's 60 s minimum to keep the test short (the engine takes any value)
		want       string // "now", "after drain" or "open"
	}{
		{"disable, drop on failure", true, true, false, 3600, "now"},
		{"disable, drain time", true, false, false, 2, "after drain"},
		{"disable, no drain time", true, false, false, 0, "open"},
		{"down, drop on failure", false, true, false, 3600, "now"},
		{"down, drop at drain end", false, false, true, 2, "after drain"},
		{"down, no drop", false, false, false, 1, "open"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			hung := testkit.StartTCP(t, "127.0.0.1", hold)
			b := startTag(t, "b")
			e := newEngine(t)
			port := testkit.FreePort(t, "127.0.0.1")
			build := func(enabledA bool) *config.Config {
				rsA := config.RealServer{ID: 11, Address: "127.0.0.1", Port: hung.Port(), Enabled: config.Bool(enabledA)}
				cfg := conf(t, vsOf(1, "127.0.0.1", port, rsA, rsOf(12, b, 1)))
				cfg.Options.DropOnFail = tc.dropOnFail
				cfg.Options.DropAtDrainEnd = tc.dropAtEnd
				cfg.Options.DrainTime = tc.drainTime
				return cfg
			}
			mustApply(t, e, build(true))
			// Connections until one lands on A, which never answers.
			var onA *client
			for range 10 {
				c := mustDial(t, hostPort("127.0.0.1", port))
				if _, err := io.WriteString(c.c, "x\n"); err != nil {
					t.Fatal(err)
				}
				if c.stillOpen() {
					onA = c
					break
				}
			}
			if onA == nil {
				t.Fatal("no connection reached real server A")
			}
			if tc.disable {
				mustApply(t, e, build(false))
			} else if _, err := e.SetHealth(backend.Key{VS: 1, Address: "127.0.0.1", Port: hung.Port()}, backend.HealthDown); err != nil {
				t.Fatal(err)
			}
			switch tc.want {
			case "now":
				if !onA.closed() {
					t.Fatal("connection to the real server not dropped")
				}
			case "after drain":
				if !onA.stillOpen() {
					t.Fatal("connection closed before the drain time ended")
				}
				if !onA.closed() {
					t.Fatal("connection not closed when the drain time ended")
				}
			case "open":
				time.Sleep(2500 * time.Millisecond) // past what a 1 or 2 s drain would allow
				if !onA.stillOpen() {
					t.Fatal("connection closed; it should live until its own timeout")
				}
			}
			if tc.disable { // a disabled server gets no new connection
				for range 3 {
					if tag, err := askOnce(hostPort("127.0.0.1", port)); err != nil || tag != "b" {
						t.Errorf("new connection after A was disabled: %q %v", tag, err)
					}
				}
			}
		})
	}
}

func TestServerKilledMidStream(t *testing.T) {
	for _, drop := range []bool{false, true} {
		t.Run(fmt.Sprintf("dropOnFail=%v", drop), func(t *testing.T) {
			a := testkit.StartTCP(t, "127.0.0.1", tagLines("a"))
			b := startTag(t, "b")
			e := newEngine(t)
			port := testkit.FreePort(t, "127.0.0.1")
			cfg := conf(t, vsOf(1, "127.0.0.1", port,
				config.RealServer{ID: 11, Address: "127.0.0.1", Port: a.Port()}, rsOf(12, b, 1)))
			cfg.Options.DropOnFail = drop
			mustApply(t, e, cfg)
			var onA *client
			for range 10 {
				c := mustDial(t, hostPort("127.0.0.1", port))
				if tag, err := c.ask("x"); err == nil && tag == "a" {
					onA = c
					break
				}
			}
			if onA == nil {
				t.Fatal("no connection reached real server A")
			}
			// The monitor's immediate first check of A (which finds it
			// Up) must be in before the death is reported, or its result
			// could land after it; the next check is an interval away.
			keyA := backend.Key{VS: 1, Address: "127.0.0.1", Port: a.Port()}
			testkit.Eventually(t, 10*time.Second, func() bool {
				return !e.Status()[0].RealServers[0].LastCheck.IsZero() && e.Server(keyA).Health() == backend.HealthUp
			}, "first health check of A")

			// Mid-stream: A dies; the health check sees it Down.
			a.Close()
			if _, err := e.SetHealth(keyA, backend.HealthDown); err != nil {
				t.Fatal(err)
			}
			if !onA.closed() {
				t.Fatal("client connection not ended after its server died")
			}
			// Clients reconnect and land on B.
			for range 3 {
				if tag, err := askOnce(hostPort("127.0.0.1", port)); err != nil || tag != "b" {
					t.Errorf("reconnect: %q %v", tag, err)
				}
			}
			if st := e.Status()[0].RealServers[0]; st.State != status.Down || st.Health != status.Down {
				t.Errorf("RS A status %+v", st)
			}
		})
	}
}

func TestRemovedServiceDrains(t *testing.T) {
	t.Parallel()
	for _, drain := range []int{0, 2} {
		t.Run(fmt.Sprintf("drainTime=%d", drain), func(t *testing.T) {
			a, b := startTag(t, "a"), startTag(t, "b")
			e := newEngine(t)
			p1, p2 := testkit.FreePort(t, "127.0.0.1"), testkit.FreePort(t, "127.0.0.1")
			build := func(vss ...config.VirtualService) *config.Config {
				cfg := conf(t, vss...)
				cfg.Options.DrainTime = drain
				return cfg
			}
			mustApply(t, e, build(vsOf(1, "127.0.0.1", p1, rsOf(11, a, 1)), vsOf(2, "127.0.0.1", p2, rsOf(21, b, 1))))
			c := mustDial(t, hostPort("127.0.0.1", p1))
			if _, err := c.ask("x"); err != nil {
				t.Fatal(err)
			}
			mustApply(t, e, build(vsOf(2, "127.0.0.1", p2, rsOf(21, b, 1))))
			if _, err := dial(hostPort("127.0.0.1", p1)); err == nil {
				t.Error("removed VS still accepts")
			}
			if tag, err := c.ask("y"); err != nil || tag != "a" {
				t.Fatalf("connection of the removed VS right after removal: %q %v", tag, err)
			}
			if drain == 0 {
				time.Sleep(2500 * time.Millisecond)
				if tag, err := c.ask("z"); err != nil || tag != "a" {
					t.Errorf("with drain time 0 the connection should live on: %q %v", tag, err)
				}
				return
			}
			if !c.closed() {
				t.Error("connection of the removed VS not closed at the end of the drain time")
			}
		})
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	var got atomic.Int64
	sink := testkit.StartTCP(t, "127.0.0.1", sinkServer(&got))
	a := startTag(t, "a")
	e := newEngine(t)
	pMax, pRate, pBW := testkit.FreePort(t, "127.0.0.1"), testkit.FreePort(t, "127.0.0.1"), testkit.FreePort(t, "127.0.0.1")
	maxVS := vsOf(1, "127.0.0.1", pMax, rsOf(11, a, 1))
	maxVS.Limits.MaxConns = 2
	rateVS := vsOf(2, "127.0.0.1", pRate, rsOf(21, a, 1))
	rateVS.Limits.ConnsPerSec = 2
	bwVS := vsOf(3, "127.0.0.1", pBW, config.RealServer{ID: 31, Address: "127.0.0.1", Port: sink.Port()})
	bwVS.Limits.Bandwidth = 4000 // kbit/s: 500 kB/s
	mustApply(t, e, conf(t, maxVS, rateVS, bwVS))

	// MaxConns: two kept connections, the third is closed at once.
	for range 2 {
		c := mustDial(t, hostPort("127.0.0.1", pMax))
		if _, err := c.ask("x"); err != nil {
			t.Fatal(err)
		}
	}
	third := mustDial(t, hostPort("127.0.0.1", pMax))
	if !third.closed() {
		t.Error("connection over MaxConns not closed")
	}
	// ConnsPerSec: of 8 connections in a row, at most 2 + what a second
	// refills are served; the refused ones are closed and counted.
	served := 0
	for range 8 {
		if _, err := askOnce(hostPort("127.0.0.1", pRate)); err == nil {
			served++
		}
	}
	if served < 2 || served >= 8 {
		t.Errorf("%d of 8 connections served with a limit of 2/s", served)
	}
	// Bandwidth: a 1.5 MB upload cannot beat 500 kB/s by much.
	c := mustDial(t, hostPort("127.0.0.1", pBW))
	_ = c.c.SetDeadline(time.Now().Add(30 * time.Second))
	start := time.Now()
	chunk := make([]byte, 64<<10)
	for range 24 {
		if _, err := c.c.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return got.Load() == 24*64<<10 }, "the upload to arrive")
	rate := float64(got.Load()) / time.Since(start).Seconds()
	if rate > 1.15*500e3 { // the first 100 kB (one burst) pass at once
		t.Errorf("bandwidth-limited upload ran at %.0f B/s, limit 500000", rate)
	}
	st := e.Status()
	if st[0].LimitHits.MaxConns != 1 || st[1].LimitHits.ConnsPerSec != int64(8-served) || st[2].LimitHits.Bandwidth == 0 {
		t.Errorf("limit hits %+v %+v %+v", st[0].LimitHits, st[1].LimitHits, st[2].LimitHits)
	}
	t.Logf("bandwidth 4000 kbit/s: %.0f kbit/s measured; %d of 8 connections at 2/s", rate*8/1000, served)
}

func TestThroughputCap(t *testing.T) {
	// Not parallel: other tests would take the CPU the shaped copy needs.
	// The acceptance point: a 20 Mbit/s global cap holds (at most 5%
	// over) across 10 s. The sender pushes as fast as it can; the real server measures
	// what arrives between its first and its last byte.
	var got atomic.Int64
	var first, last atomic.Int64
	sink := testkit.StartTCP(t, "127.0.0.1", func(c net.Conn) {
		buf := make([]byte, 64<<10)
		for {
			k, err := c.Read(buf)
			if k > 0 {
				now := time.Now().UnixNano()
				first.CompareAndSwap(0, now)
				last.Store(now)
				got.Add(int64(k))
			}
			if err != nil {
				return
			}
		}
	})
	e := newEngine(t)
	port := testkit.FreePort(t, "127.0.0.1")
	cfg := conf(t, vsOf(1, "127.0.0.1", port, config.RealServer{ID: 11, Address: "127.0.0.1", Port: sink.Port()}))
	cfg.Options.ThroughputLimit = 20
	mustApply(t, e, cfg)
	c := mustDial(t, hostPort("127.0.0.1", port))
	_ = c.c.SetDeadline(time.Now().Add(60 * time.Second))
	chunk := make([]byte, 64<<10)
	end := time.Now().Add(10 * time.Second)
	for time.Now().Before(end) {
		if _, err := c.c.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	c.c.Close()
	testkit.Eventually(t, 10*time.Second, func() bool { return e.Status()[0].ActiveConns == 0 }, "the connection to end")
	secs := time.Duration(last.Load() - first.Load()).Seconds()
	mbps := float64(got.Load()) * 8 / secs / 1e6
	t.Logf("20 Mbit/s cap: %.3f Mbit/s over %.2f s (%d bytes)", mbps, secs, got.Load())
	// The cap is the upper bound (+5%). Below it only a starved machine
	// falls short (seen: 17 Mbit/s with the whole suite on two cores), so
	// the lower bound only shows the traffic was not throttled to nothing.
	if secs < 8 || mbps < 10 || mbps > 21 {
		t.Errorf("throughput %.3f Mbit/s over %.2f s; want at most 20 Mbit/s + 5%% (and at least 10)", mbps, secs)
	}
	if st := e.Status()[0]; st.LimitHits.Throughput == 0 || st.BytesIn != got.Load() {
		t.Errorf("status after the capped transfer: hits %+v bytes in %d, server got %d", st.LimitHits, st.BytesIn, got.Load())
	}
}

func TestLiveCountersAndRates(t *testing.T) {
	t.Parallel()
	var got atomic.Int64
	sink := testkit.StartTCP(t, "127.0.0.1", sinkServer(&got))
	e := newEngine(t)
	port := testkit.FreePort(t, "127.0.0.1")
	mustApply(t, e, conf(t, vsOf(1, "127.0.0.1", port, config.RealServer{ID: 11, Address: "127.0.0.1", Port: sink.Port()})))
	c := mustDial(t, hostPort("127.0.0.1", port))
	chunk := make([]byte, 256<<10)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { // a long connection that keeps sending, bounded
		defer wg.Done()
		for range 2000 {
			select {
			case <-stop:
				return
			default:
			}
			if _, err := c.c.Write(chunk); err != nil {
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	testkit.Eventually(t, 10*time.Second, func() bool {
		st := e.Status()[0]
		return st.ActiveConns == 1 && st.BytesIn > 0 && st.Rates.BytesInPerSec > 0 &&
			st.RealServers[0].BytesIn > 0 && st.RealServers[0].Rates.BytesInPerSec > 0
	}, "bytes of the open connection to be counted")

	close(stop)
	wg.Wait()
	c.c.Close()
	testkit.Eventually(t, 10*time.Second, func() bool {
		st := e.Status()[0]
		return st.ActiveConns == 0 && st.BytesIn == got.Load() && st.RealServers[0].BytesIn == got.Load()
	}, "the final count")

	testkit.Eventually(t, 10*time.Second, func() bool { return e.Status()[0].Rates.ConnsPerSec == 0 }, "the connection rate to fall back")
	if st := e.Status()[0]; st.TotalConns != 1 || st.Errors != 0 {
		t.Errorf("status %+v", st)
	}
}

func TestErrorsCounted(t *testing.T) {
	e := newEngine(t)
	port := testkit.FreePort(t, "127.0.0.1")
	dead := config.RealServer{ID: 11, Address: "127.0.0.1", Port: testkit.FreePort(t, "127.0.0.1")}
	vs := vsOf(1, "127.0.0.1", port, dead)
	vs.HealthCheck.Type = "none" // a tcp check would take it Down before the dial this test counts
	mustApply(t, e, conf(t, vs))
	c := mustDial(t, hostPort("127.0.0.1", port))
	if !c.closed() {
		t.Fatal("connection with a dead real server not closed")
	}
	testkit.Eventually(t, 10*time.Second, func() bool { return e.Status()[0].Errors == 1 }, "the error to be counted")
	if st := e.Status()[0]; st.RealServers[0].Failures == 0 {
		t.Errorf("RS failures %+v", st.RealServers[0])
	}
}
