package l4

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"golang.org/x/time/rate"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/listener"
)

func pickerOf(t testing.TB, servers ...*backend.Server) balance.Picker {
	t.Helper()
	p, err := balance.New("rr", servers)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// oneSession returns the only session of p.
func oneSession(t *testing.T, p *Proxy) *session {
	t.Helper()
	var found *session
	eventually(t, "a session with its server side", func() bool {
		p.scanMu.Lock()
		defer p.scanMu.Unlock()
		list := p.sessions(nil)
		defer clear(list)
		if len(list) != 1 {
			return false
		}
		list[0].mu.Lock()
		defer list[0].mu.Unlock()
		found = list[0]
		return found.server != nil
	})
	return found
}

func getsockopt(t *testing.T, c *net.TCPConn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return v
}

func TestServerSideKeepAlive(t *testing.T) {
	be := serve(t, echo)
	f := startFront(t, "rr", 0, rs(be.Port()))
	c := f.dial(t)
	defer c.Close()
	ss := oneSession(t, f.proxy)
	ss.mu.Lock()
	server := ss.server
	ss.mu.Unlock()
	// A young connection has none yet: Account turns it on from
	// accountAfter, the runtime calls Account once a second.
	if on := getsockopt(t, server, unix.SOL_SOCKET, unix.SO_KEEPALIVE); on != 0 {
		t.Errorf("server-side keep-alive on=%d before the connection is %v old; want 0", on, accountAfter)
	}
	time.Sleep(accountAfter)
	f.proxy.Account()
	on := getsockopt(t, server, unix.SOL_SOCKET, unix.SO_KEEPALIVE)
	idle := getsockopt(t, server, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
	cnt := getsockopt(t, server, unix.IPPROTO_TCP, unix.TCP_KEEPCNT)
	if on != 1 || idle != int(listener.KeepAlive.Idle/time.Second) || cnt != listener.KeepAlive.Count {
		t.Errorf("server-side keep-alive on=%d idle=%d count=%d; want %+v", on, idle, cnt, listener.KeepAlive)
	}
}

// peerServe answers with the address it sees the connection come from.
func peerServe(c *net.TCPConn) { fmt.Fprintf(c, "%s\n", c.RemoteAddr()) }

func TestSourceBinding(t *testing.T) {
	be := serve(t, peerServe)
	for _, tc := range []struct {
		name   string
		source netip.Addr
		want   string
	}{
		{"vip", netip.MustParseAddr("127.0.0.7"), "127.0.0.7"},
		{"kernel", netip.Addr{}, ""},
		{"other family falls back to the kernel", netip.MustParseAddr("::1"), ""},
		{"wildcard means none", netip.MustParseAddr("0.0.0.0"), ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFrontCfg(t, nil, ServiceConfig{Picker: pickerOf(t, rs(be.Port())), Source: tc.source})
			want := tc.want
			if want == "" {
				kernel, err := RouteSource(netip.MustParseAddr("127.0.0.1"))
				if err != nil {
					t.Fatal(err)
				}
				want = kernel.String()
			}
			c := f.dial(t)
			defer c.Close()
			line, err := io.ReadAll(c)
			if err != nil {
				t.Fatal(err)
			}
			ap, err := netip.ParseAddrPort(strings.TrimSpace(string(line)))
			if err != nil || ap.Addr().String() != want {
				t.Errorf("server saw %q, want %s", line, want)
			}
		})
	}
}

func TestManyConnectionsFromOneSource(t *testing.T) {
	// IP_BIND_ADDRESS_NO_PORT: binding the source must not reserve a port
	// per connection, so the same local port may serve two real servers.
	a, b := serve(t, peerServe), serve(t, peerServe)
	f := startFrontCfg(t, nil, ServiceConfig{Picker: pickerOf(t, rs(a.Port()), rs(b.Port())), Source: netip.MustParseAddr("127.0.0.8")})
	for range 20 {
		c := f.dial(t)
		if _, err := io.ReadAll(c); err != nil {
			t.Fatal(err)
		}
		c.Close()
	}
	eventually(t, "connections to end", func() bool { return f.stats.Active() == 0 })
	if f.stats.Errors() != 0 || f.stats.Total() != 20 {
		t.Errorf("errors %d total %d", f.stats.Errors(), f.stats.Total())
	}
}

func TestCloseServiceAndLimits(t *testing.T) {
	be := serve(t, echo)
	p := New(Options{Logger: slog.New(slog.DiscardHandler)})
	defer p.Close()
	one := startFrontCfg(t, p, ServiceConfig{ID: 1, Picker: pickerOf(t, rs(be.Port())), MaxConns: 2})
	two := startFrontCfg(t, p, ServiceConfig{ID: 2, Picker: pickerOf(t, rs(be.Port())), ConnRate: rate.NewLimiter(rate.Every(time.Hour), 1)})
	var ones []*net.TCPConn
	for range 2 {
		c := one.dial(t)
		defer c.Close()
		roundTrip(t, c)
		ones = append(ones, c)
	}
	over := one.dial(t)
	defer over.Close()
	if _, err := io.ReadAll(over); err != nil {
		t.Errorf("connection over MaxConns: %v", err)
	}
	c2 := two.dial(t)
	defer c2.Close()
	roundTrip(t, c2)
	late := two.dial(t)
	if _, err := io.ReadAll(late); err != nil {
		t.Errorf("connection over the rate: %v", err)
	}
	late.Close()
	if one.stats.LimitHits(backend.LimitMaxConns) != 1 || two.stats.LimitHits(backend.LimitConnRate) != 1 {
		t.Errorf("limit hits %d %d", one.stats.LimitHits(backend.LimitMaxConns), two.stats.LimitHits(backend.LimitConnRate))
	}
	if n := p.CloseService(1); n != 2 {
		t.Errorf("CloseService(1) = %d, want 2", n)
	}
	for _, c := range ones {
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("closed connection: %v", err)
		}
	}
	roundTrip(t, c2) // service 2 untouched
}

func roundTrip(t *testing.T, c *net.TCPConn) {
	t.Helper()
	if _, err := c.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 4)
	if _, err := io.ReadFull(c, b); err != nil || string(b) != "ping" {
		t.Fatalf("round trip: %q %v", b, err)
	}
}

func TestAccountLongConnection(t *testing.T) {
	var got atomic.Int64
	be := serve(t, func(c *net.TCPConn) {
		n, _ := io.Copy(io.Discard, c)
		got.Add(n)
	})
	srv := rs(be.Port())
	f := startFront(t, "rr", 0, srv)
	c := f.dial(t)
	chunk := make([]byte, 1<<20)
	for range 4 {
		if _, err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	// While the connection is open, Account brings the counters up to
	// what the real server acknowledged.
	eventually(t, "live bytes", func() bool {
		f.proxy.Account()
		return f.stats.BytesIn() == 4<<20 && srv.BytesIn() == 4<<20
	})
	if f.stats.Active() != 1 {
		t.Fatal("connection ended early")
	}
	for range 2 {
		if _, err := c.Write(chunk); err != nil {
			t.Fatal(err)
		}
	}
	c.Close()
	eventually(t, "the final count", func() bool { return f.stats.Active() == 0 && got.Load() == 6<<20 })
	f.proxy.Account()
	if f.stats.BytesIn() != 6<<20 || srv.BytesIn() != 6<<20 {
		t.Errorf("bytes in %d / %d, want %d: counted twice or lost", f.stats.BytesIn(), srv.BytesIn(), 6<<20)
	}
}

func TestShapedEcho(t *testing.T) {
	// A shaped connection is copied through user space: it must still
	// carry everything both ways and half-close.
	be := serve(t, echo)
	srv := rs(be.Port())
	bw := NewShaper(4<<20, backend.LimitBandwidth)
	global := NewShaper(8<<20, backend.LimitThroughput)
	f := startFrontCfg(t, nil, ServiceConfig{Picker: pickerOf(t, srv), Bandwidth: bw, Throughput: global})
	c := f.dial(t)
	defer c.Close()
	payload := make([]byte, 3<<20)
	for i := range payload {
		payload[i] = byte(i * 7)
	}
	go func() {
		_, _ = c.Write(payload)
		_ = c.CloseWrite()
	}()
	got, err := io.ReadAll(c)
	if err != nil || string(got) != string(payload) {
		t.Fatalf("shaped echo: %d bytes, %v", len(got), err)
	}
	eventually(t, "the connection to end", func() bool { return f.stats.Active() == 0 })
	if f.stats.BytesIn() != 3<<20 || f.stats.BytesOut() != 3<<20 || f.stats.LimitHits(backend.LimitBandwidth) == 0 {
		t.Errorf("bytes %d/%d, bandwidth hits %d", f.stats.BytesIn(), f.stats.BytesOut(), f.stats.LimitHits(backend.LimitBandwidth))
	}
}

func TestShaperSetRate(t *testing.T) {
	s := NewShaper(1000, backend.LimitBandwidth)
	if s.Rate() != 1000 || s.Limiter(true).Burst() != minBurst || s.Hit != backend.LimitBandwidth {
		t.Errorf("rate %v burst %d", s.Rate(), s.Limiter(true).Burst())
	}
	s.SetRate(100e6)
	if s.Rate() != 100e6 || s.Limiter(false).Burst() != maxBurst {
		t.Errorf("rate %v burst %d", s.Rate(), s.Limiter(false).Burst())
	}
	s.SetRate(0)
	if s.Rate() != 0 || !s.Limiter(true).Allow() {
		t.Error("rate 0 is not unlimited")
	}
}

// FuzzShaper checks the property the throughput limit rests on: whatever
// the rate and the sizes and times of the chunks a copy asks for, the
// bytes granted up to any time T never exceed rate·T plus one burst.
func FuzzShaper(f *testing.F) {
	f.Add(uint32(2_500_000), []byte{10, 200, 3, 255, 0, 9})
	f.Add(uint32(125), []byte{1, 1, 1, 1})
	f.Add(uint32(1), []byte{255, 255})
	f.Fuzz(func(t *testing.T, bytesPerSec uint32, steps []byte) {
		if bytesPerSec == 0 || len(steps) > 2000 {
			return
		}
		s := NewShaper(float64(bytesPerSec), backend.LimitThroughput)
		l := s.Limiter(true)
		burst := float64(l.Burst())
		start := time.Unix(1e9, 0)
		now := start
		var granted float64
		for i, b := range steps {
			n := int(b)*131 + 1 // chunk size
			n = min(n, l.Burst())
			r := l.ReserveN(now, n)
			if !r.OK() {
				t.Fatalf("step %d: a chunk within the burst was refused", i)
			}
			at := now.Add(r.DelayFrom(now)) // when the copy may write it
			granted += float64(n)
			elapsed := at.Sub(start).Seconds()
			if limit := float64(bytesPerSec)*elapsed + burst + 1; granted > limit {
				t.Fatalf("step %d: %.0f bytes granted by %.3fs, limit %.0f", i, granted, elapsed, limit)
			}
			now = at.Add(time.Duration(b) * time.Millisecond) // the next read comes a little later
		}
	})
}
