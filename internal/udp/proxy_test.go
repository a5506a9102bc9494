package udp

import (
	"fmt"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/time/rate"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/l4"
	"github.com/fulcrum-lb/fulcrum/internal/listener"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var quiet = slog.New(slog.DiscardHandler)

// echoServer is a UDP real server that answers "<tag> <datagram>" and
// remembers the addresses it saw.
type echoServer struct {
	*testkit.UDPServer
	port int
	mu   sync.Mutex
	seen map[netip.AddrPort]bool
}

func startEcho(t testing.TB, addr, tag string) *echoServer {
	t.Helper()
	s := &echoServer{seen: map[netip.AddrPort]bool{}}
	s.UDPServer = testkit.StartUDP(t, addr, func(pc net.PacketConn, from net.Addr, p []byte) {
		ap := from.(*net.UDPAddr).AddrPort()
		s.mu.Lock()
		s.seen[netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())] = true
		s.mu.Unlock()
		_, _ = pc.WriteTo(append([]byte(tag+" "), p...), from)
	})
	s.port = s.Port()
	return s
}

func (s *echoServer) peers() []netip.AddrPort {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []netip.AddrPort
	for ap := range s.seen {
		out = append(out, ap)
	}
	return out
}

func rsOf(addr string, port int) *backend.Server {
	return backend.NewServer(backend.Key{VS: 1, Address: addr, Port: port}, backend.Settings{Weight: 1, Enabled: true})
}

// front is a UDP virtual service: a socket of a listener.Registry whose
// datagrams go to a Service.
type front struct {
	proxy *Proxy
	reg   *listener.Registry
	vip   netip.AddrPort
	svc   *Service
}

func startFront(t testing.TB, vipAddr string, o Options, cfg ServiceConfig) *front {
	t.Helper()
	vip := netip.AddrPortFrom(netip.MustParseAddr(vipAddr), uint16(testkit.FreeUDPPort(t, vipAddr)))
	o.Logger = quiet
	p := New(o)
	f := &front{proxy: p, reg: listener.New(quiet), vip: vip, svc: p.Service(cfg)}
	if failed, err := f.reg.Reconcile(listener.Set{UDP: map[netip.AddrPort]listener.PacketHandler{vip: f.svc}}); err != nil || len(failed) > 0 {
		t.Fatal(err, failed)
	}
	t.Cleanup(func() {
		f.reg.Close()
		p.Close()
	})
	return f
}

func picker(t testing.TB, servers ...*backend.Server) balance.Picker {
	t.Helper()
	p, err := balance.New("rr", servers)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// phone is a UDP client.
func phone(t testing.TB) *net.UDPConn {
	t.Helper()
	c, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

// exchange sends msg to vip and returns the answer and its source; it
// retries a bounded number of times, and returns "" when nothing came.
func exchange(t testing.TB, c *net.UDPConn, vip netip.AddrPort, msg string) (string, netip.AddrPort) {
	t.Helper()
	buf := make([]byte, 65535)
	for range 10 {
		if _, err := c.WriteToUDPAddrPort([]byte(msg), vip); err != nil {
			t.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		n, from, err := c.ReadFromUDPAddrPort(buf)
		if err == nil {
			return string(buf[:n]), from
		}
	}
	return "", netip.AddrPort{}
}

// eventually waits up to 10 s for cond.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, cond, what)
}

func TestSessions(t *testing.T) {
	a, b := startEcho(t, "127.0.0.51", "a"), startEcho(t, "127.0.0.52", "b")
	sa, sb := rsOf("127.0.0.51", a.port), rsOf("127.0.0.52", b.port)
	stats := new(backend.Counters)
	f := startFront(t, "127.0.0.50", Options{}, ServiceConfig{ID: 1, Name: "t", Picker: picker(t, sa, sb), Stats: stats,
		Source: netip.MustParseAddr("127.0.0.50")})
	p1, p2 := phone(t), phone(t)
	r1, from := exchange(t, p1, f.vip, "hello")
	if from != f.vip {
		t.Errorf("answer from %s, want the VIP %s", from, f.vip)
	}
	r2, _ := exchange(t, p2, f.vip, "hello")
	tag1, tag2 := strings.Fields(r1)[0], strings.Fields(r2)[0]
	if tag1 == tag2 || r1[2:] != "hello" {
		t.Errorf("two clients answered by %q and %q, want both servers", r1, r2)
	}
	// A client's session stays on its server.
	for i := range 5 {
		if r, _ := exchange(t, p1, f.vip, fmt.Sprint(i)); r != tag1+" "+fmt.Sprint(i) {
			t.Errorf("session moved: %q", r)
		}
	}
	if f.proxy.Active() != 2 || stats.Active() != 2 || stats.Total() != 2 {
		t.Errorf("sessions %d, stats %d/%d", f.proxy.Active(), stats.Active(), stats.Total())
	}
	// The real servers see the source address: the VIP, not the client.
	for _, s := range []*echoServer{a, b} {
		for _, ap := range s.peers() {
			if ap.Addr() != f.vip.Addr() {
				t.Errorf("real server saw %s, want the VIP address", ap)
			}
		}
	}
	// A reply is counted once sent: it may reach the client first.
	wantIn := int64(2*len("hello") + 5)
	testkit.Within(time.Second, func() bool { return stats.BytesIn() == wantIn && stats.BytesOut() == wantIn+7*2 })
	in, out := stats.BytesIn(), stats.BytesOut()
	if in != wantIn || out != in+7*2 {
		t.Errorf("bytes in %d out %d", in, out)
	}
	if n := f.proxy.CloseService(2); n != 0 {
		t.Errorf("CloseService of another service closed %d", n)
	}
	if n := f.proxy.CloseService(1); n != 2 {
		t.Errorf("CloseService closed %d, want 2", n)
	}
	eventually(t, "sessions to end", func() bool { return f.proxy.Active() == 0 && stats.Active() == 0 })
	if sa.Active() != 0 || sb.Active() != 0 || sa.OpenConns() != 0 {
		t.Errorf("servers still hold slots: %d %d", sa.Active(), sb.Active())
	}
}

func TestIdleTimeout(t *testing.T) {
	a := startEcho(t, "127.0.0.51", "a")
	const idle = 2 * time.Second
	f := startFront(t, "127.0.0.50", Options{}, ServiceConfig{ID: 1, Picker: picker(t, rsOf("127.0.0.51", a.port)), IdleTimeout: idle})
	if f.svc.Config().IdleTimeout != idle {
		t.Fatal(f.svc.Config().IdleTimeout)
	}
	c := phone(t)
	if r, _ := exchange(t, c, f.vip, "x"); r != "a x" {
		t.Fatalf("answer %q", r)
	}
	// Activity keeps the session: datagrams 100 ms apart for longer than
	// the idle timeout.
	for start := time.Now(); time.Since(start) < idle+500*time.Millisecond; {
		time.Sleep(100 * time.Millisecond)
		exchange(t, c, f.vip, "y")
	}
	if f.proxy.Active() != 1 || f.svc.cfg.Stats.Total() != 1 {
		t.Fatalf("active session lost: %d sessions, %d made", f.proxy.Active(), f.svc.cfg.Stats.Total())
	}
	eventually(t, "the idle session to end", func() bool { return f.proxy.Active() == 0 })
	if d := (&ServiceConfig{}); (*f.proxy).Service(*d).Config().IdleTimeout != DefaultIdleTimeout {
		t.Error("default idle timeout not applied")
	}
}

func TestBoundedTable(t *testing.T) {
	a := startEcho(t, "127.0.0.51", "a")
	stats := new(backend.Counters)
	f := startFront(t, "127.0.0.50", Options{MaxSessions: 3}, ServiceConfig{ID: 1, Picker: picker(t, rsOf("127.0.0.51", a.port)), Stats: stats})
	var phones []*net.UDPConn
	for i := range 5 {
		c := phone(t)
		phones = append(phones, c)
		if r, _ := exchange(t, c, f.vip, fmt.Sprint(i)); r != "a "+fmt.Sprint(i) {
			t.Fatalf("client %d: %q", i, r)
		}
	}
	eventually(t, "evicted sessions to end", func() bool { return f.proxy.Active() == 3 && stats.Active() == 3 })
	if hits := stats.LimitHits(backend.LimitSessions); hits != 2 {
		t.Errorf("%d evictions counted, want 2", hits)
	}
	// The newest client is still served.
	if r, _ := exchange(t, phones[4], f.vip, "again"); r != "a again" {
		t.Errorf("newest client after evictions: %q", r)
	}
}

func TestSessionLimits(t *testing.T) {
	a := startEcho(t, "127.0.0.51", "a")
	for _, tc := range []struct {
		name  string
		cfg   ServiceConfig
		limit backend.Limit
	}{
		{"max sessions", ServiceConfig{MaxConns: 2}, backend.LimitMaxConns},
		{"session rate", ServiceConfig{ConnRate: rate.NewLimiter(rate.Every(time.Hour), 2)}, backend.LimitConnRate},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cfg := tc.cfg
			cfg.ID, cfg.Picker, cfg.Stats = 1, picker(t, rsOf("127.0.0.51", a.port)), new(backend.Counters)
			f := startFront(t, "127.0.0.50", Options{}, cfg)
			for i := range 2 {
				c := phone(t)
				for range 2 { // the second exchange proves the session (see makeRoom)
					if r, _ := exchange(t, c, f.vip, "x"); r != "a x" {
						t.Fatalf("client %d: %q", i, r)
					}
				}
			}
			c := phone(t)
			_, _ = c.WriteToUDPAddrPort([]byte("over"), f.vip)
			eventually(t, "the refusal to be counted", func() bool { return cfg.Stats.LimitHits(tc.limit) >= 1 })
			if f.proxy.Active() != 2 {
				t.Errorf("%d sessions, want 2", f.proxy.Active())
			}
		})
	}
}

func TestPolicing(t *testing.T) {
	a := startEcho(t, "127.0.0.51", "a")
	stats := new(backend.Counters)
	bw := l4.NewShaper(8000, backend.LimitBandwidth) // bytes/s; burst 4 KiB
	f := startFront(t, "127.0.0.50", Options{}, ServiceConfig{ID: 1, Picker: picker(t, rsOf("127.0.0.51", a.port)), Stats: stats, Bandwidth: bw})
	c := phone(t)
	msg := strings.Repeat("z", 1000)
	for range 20 { // 20 kB at once: the burst passes, the rest is dropped
		_, _ = c.WriteToUDPAddrPort([]byte(msg), f.vip)
	}
	eventually(t, "drops to be counted", func() bool { return stats.LimitHits(backend.LimitBandwidth) > 0 })
	if in := stats.BytesIn(); in > 8000+4096 {
		t.Errorf("%d bytes forwarded at once under 8000 B/s with a 4 KiB burst", in)
	}
}

func TestHashKeyHook(t *testing.T) {
	a := startEcho(t, "127.0.0.51", "a")
	var mu sync.Mutex
	var keys []string
	rec := &recordingPicker{next: picker(t, rsOf("127.0.0.51", a.port)), seen: func(k string) {
		mu.Lock()
		keys = append(keys, k)
		mu.Unlock()
	}}
	f := startFront(t, "127.0.0.50", Options{}, ServiceConfig{ID: 1, Picker: rec,
		HashKey: func(p []byte) string { return "key:" + string(p) }})
	if r, _ := exchange(t, phone(t), f.vip, "call-1"); r != "a call-1" {
		t.Fatalf("answer %q", r)
	}
	mu.Lock()
	defer mu.Unlock()
	if len(keys) != 1 || keys[0] != "key:call-1" {
		t.Errorf("picker saw hash keys %v", keys)
	}
}

// recordingPicker passes picks to a real picker and reports the hash key
// of each request: it stands for a persistence layer keyed on it.
type recordingPicker struct {
	next balance.Picker
	seen func(string)
}

func (r *recordingPicker) Pick(req *balance.Request) (*backend.Server, func(balance.Outcome), error) {
	r.seen(req.HashKey)
	return r.next.Pick(req)
}

func TestNoServer(t *testing.T) {
	stats := new(backend.Counters)
	f := startFront(t, "127.0.0.50", Options{}, ServiceConfig{ID: 1, Picker: picker(t), Stats: stats})
	_, _ = phone(t).WriteToUDPAddrPort([]byte("x"), f.vip)
	eventually(t, "the error to be counted", func() bool { return stats.Errors() == 1 })
	if f.proxy.Active() != 0 || stats.Active() != 0 {
		t.Errorf("session left without a server")
	}
}

func TestDropOnServer(t *testing.T) {
	a := startEcho(t, "127.0.0.51", "a")
	sa := rsOf("127.0.0.51", a.port)
	f := startFront(t, "127.0.0.50", Options{}, ServiceConfig{ID: 1, Picker: picker(t, sa)})
	if r, _ := exchange(t, phone(t), f.vip, "x"); r != "a x" {
		t.Fatalf("answer %q", r)
	}
	if n := sa.CloseConns(); n != 1 {
		t.Fatalf("CloseConns = %d, want the session", n)
	}
	eventually(t, "the session to end", func() bool { return f.proxy.Active() == 0 && sa.Active() == 0 })
}

func TestCloseEndsSessions(t *testing.T) {
	a := startEcho(t, "127.0.0.51", "a")
	p := New(Options{Logger: quiet})
	reg := listener.New(quiet)
	defer reg.Close()
	vip := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.50"), uint16(testkit.FreeUDPPort(t, "127.0.0.50")))
	svc := p.Service(ServiceConfig{ID: 1, Picker: picker(t, rsOf("127.0.0.51", a.port))})
	if _, err := reg.Reconcile(listener.Set{UDP: map[netip.AddrPort]listener.PacketHandler{vip: svc}}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		exchange(t, phone(t), vip, "x")
	}
	if p.Active() != 3 {
		t.Fatalf("%d sessions", p.Active())
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	if p.Active() != 0 {
		t.Errorf("%d sessions after Close", p.Active())
	}
	// After Close, datagrams are dropped.
	if r, _ := exchange(t, phone(t), vip, "late"); r != "" {
		t.Errorf("answer after Close: %q", r)
	}
}

// TestRefusedKeepsSession: a real server whose port is closed answers
// with ICMP port unreachable (ECONNREFUSED on the session's socket); the
// session stays, and is answered once the server is back.
func TestRefusedKeepsSession(t *testing.T) {
	port := testkit.FreeUDPPort(t, "127.0.0.51") // nothing listens there now
	stats := new(backend.Counters)
	f := startFront(t, "127.0.0.50", Options{}, ServiceConfig{ID: 1, Picker: picker(t, rsOf("127.0.0.51", port)), Stats: stats})
	c := phone(t)
	for range 3 {
		_, _ = c.WriteToUDPAddrPort([]byte("x"), f.vip)
		time.Sleep(20 * time.Millisecond)
	}
	if f.proxy.Active() != 1 {
		t.Fatalf("%d sessions after refusals, want 1", f.proxy.Active())
	}
	back, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 51), Port: port})
	if err != nil {
		t.Skipf("the port was taken meanwhile: %v", err)
	}
	defer back.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		buf := make([]byte, 64)
		_ = back.SetReadDeadline(time.Now().Add(5 * time.Second))
		for range 20 {
			n, from, err := back.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			_, _ = back.WriteToUDPAddrPort(buf[:n], from)
		}
	}()
	if r, _ := exchange(t, c, f.vip, "again"); r != "again" {
		t.Errorf("answer %q after the server came back", r)
	}
	back.Close()
	<-done
	if stats.Total() != 1 {
		t.Errorf("%d sessions made, want the one kept", stats.Total())
	}
}

// TestNamedServer: a real server given by DNS name is resolved for each
// new session.
func TestNamedServer(t *testing.T) {
	a := startEcho(t, "127.0.0.1", "named")
	srv := backend.NewServer(backend.Key{VS: 1, Address: "localhost", Port: a.port}, backend.Settings{Weight: 1, Enabled: true})
	if _, ok := srv.AddrPort(); ok {
		t.Fatal("localhost taken for an address")
	}
	f := startFront(t, "127.0.0.50", Options{}, ServiceConfig{ID: 1, Picker: picker(t, srv)})
	if r, _ := exchange(t, phone(t), f.vip, "x"); r != "named x" {
		t.Errorf("answer %q", r)
	}
}

// TestSessionRank: sessions that have not proved a round trip are evicted
// before any that has, whatever their activity; among either kind, the
// least recently active first.
func TestSessionRank(t *testing.T) {
	mk := func(last int64, proven bool) *session {
		ss := new(session)
		ss.last.Store(last)
		ss.proof.Store(proven)
		return ss
	}
	oldProven, newProven := mk(int64(time.Second), true), mk(int64(time.Hour), true)
	oldUnproven, newUnproven := mk(int64(time.Second), false), mk(int64(100*time.Hour), false)
	order := []*session{oldUnproven, newUnproven, oldProven, newProven}
	for i := 1; i < len(order); i++ {
		if order[i-1].rank() >= order[i].rank() {
			t.Errorf("session %d ranks at or above session %d", i-1, i)
		}
	}
}
