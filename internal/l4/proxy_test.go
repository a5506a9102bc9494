package l4

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"strconv"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// serve starts a backend on 127.0.0.1 whose connections are handled by fn.
func serve(t testing.TB, fn func(c *net.TCPConn)) *testkit.TCPServer {
	t.Helper()
	return testkit.StartTCP(t, "127.0.0.1", func(c net.Conn) { fn(c.(*net.TCPConn)) })
}

// echo copies everything back and half-closes at EOF.
func echo(c *net.TCPConn) {
	_, _ = io.Copy(c, c)
	_ = c.CloseWrite()
}

// answerAfterEOF reads until EOF, then reports what it read.
func answerAfterEOF(c *net.TCPConn) {
	n, _ := io.Copy(io.Discard, c)
	fmt.Fprintf(c, "read %d bytes", n)
}

func rs(port int) *backend.Server {
	return backend.NewServer(backend.Key{VS: 1, Address: "127.0.0.1", Port: port}, backend.Settings{Weight: 1, Enabled: true})
}

// front is a virtual service: a socket on 127.0.0.1 whose connections go to
// a Service.
type front struct {
	proxy *Proxy
	ln    *net.TCPListener
	addr  string
	stats *backend.Counters
	done  chan struct{}
	own   bool // the front made its Proxy and closes it
}

func startFront(t testing.TB, method string, idle time.Duration, servers ...*backend.Server) *front {
	t.Helper()
	picker, err := balance.New(method, servers)
	if err != nil {
		t.Fatal(err)
	}
	return startFrontCfg(t, nil, ServiceConfig{Name: "test", Picker: picker, IdleTimeout: idle})
}

// startFrontCfg starts a front for a service of cfg, on p (a new Proxy
// when nil).
func startFrontCfg(t testing.TB, p *Proxy, cfg ServiceConfig) *front {
	t.Helper()
	own := p == nil
	if own {
		p = New(Options{Logger: slog.New(slog.DiscardHandler)})
	}
	if cfg.Stats == nil {
		cfg.Stats = new(backend.Counters)
	}
	f := &front{proxy: p, stats: cfg.Stats, done: make(chan struct{}), own: own}
	svc := p.Service(cfg)
	f.ln = testkit.Listen(t, "127.0.0.1").(*net.TCPListener)
	f.addr = f.ln.Addr().String()
	go func() {
		defer close(f.done)
		for {
			c, err := f.ln.AcceptTCP()
			if err != nil {
				return
			}
			svc.Handle(c)
		}
	}()
	t.Cleanup(f.close)
	return f
}

func (f *front) close() {
	f.ln.Close()
	<-f.done
	if f.own {
		f.proxy.Close()
	}
}

func (f *front) dial(t testing.TB) *net.TCPConn {
	t.Helper()
	c, err := net.DialTimeout("tcp", f.addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c.(*net.TCPConn)
}

// eventually waits up to 10 s for cond.
func eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, cond, what)
}

func TestProxyEcho(t *testing.T) {
	for _, tc := range []struct {
		name string
		size int
	}{
		{"empty", 0},
		{"hello", 5},
		{"64KiB", 64 << 10},
		{"8MiB", 8 << 20},
	} {
		t.Run(tc.name, func(t *testing.T) {
			be := serve(t, echo)
			srv := rs(be.Port())
			f := startFront(t, "rr", 0, srv)
			c := f.dial(t)
			defer c.Close()

			payload := make([]byte, tc.size)
			_, _ = rand.Read(payload)
			werr := make(chan error, 1)
			go func() {
				_, err := c.Write(payload)
				if err == nil {
					err = c.CloseWrite()
				}
				werr <- err
			}()
			got, err := io.ReadAll(c)
			if err != nil {
				t.Fatalf("read: %v", err)
			}
			if err := <-werr; err != nil {
				t.Fatalf("write: %v", err)
			}
			if sha256.Sum256(got) != sha256.Sum256(payload) {
				t.Fatalf("echo differs: got %d bytes, sent %d", len(got), len(payload))
			}
			eventually(t, "connection to end", func() bool { return f.stats.Active() == 0 && srv.Active() == 0 })
			n := int64(tc.size)
			if f.stats.BytesIn() != n || f.stats.BytesOut() != n || srv.BytesIn() != n || srv.BytesOut() != n {
				t.Errorf("bytes: vs in/out %d/%d, rs in/out %d/%d; want %d each",
					f.stats.BytesIn(), f.stats.BytesOut(), srv.BytesIn(), srv.BytesOut(), n)
			}
			if f.stats.Total() != 1 || srv.Total() != 1 || srv.OpenConns() != 0 {
				t.Errorf("totals: vs %d rs %d, rs open %d; want 1, 1, 0", f.stats.Total(), srv.Total(), srv.OpenConns())
			}
		})
	}
}

func TestHalfClose(t *testing.T) {
	be := serve(t, answerAfterEOF)
	f := startFront(t, "rr", 0, rs(be.Port()))
	c := f.dial(t)
	defer c.Close()
	if _, err := c.Write(bytes.Repeat([]byte("x"), 1000)); err != nil {
		t.Fatal(err)
	}
	if err := c.CloseWrite(); err != nil {
		t.Fatal(err)
	}
	// The server only answers after it has seen our EOF; the answer must
	// still reach us through the half-closed connection.
	got, err := io.ReadAll(c)
	if err != nil || string(got) != "read 1000 bytes" {
		t.Fatalf("answer %q, %v; want %q", got, err, "read 1000 bytes")
	}
}

func TestServerHalfClose(t *testing.T) {
	// The server speaks first and half-closes; the client still sends
	// afterwards and the server still reads it.
	got := make(chan string, 1)
	be := serve(t, func(c *net.TCPConn) {
		_, _ = c.Write([]byte("banner"))
		_ = c.CloseWrite()
		b, _ := io.ReadAll(c)
		got <- string(b)
	})
	f := startFront(t, "rr", 0, rs(be.Port()))
	c := f.dial(t)
	defer c.Close()
	banner, err := io.ReadAll(c)
	if err != nil || string(banner) != "banner" {
		t.Fatalf("banner %q, %v", banner, err)
	}
	if _, err := c.Write([]byte("after")); err != nil {
		t.Fatal(err)
	}
	_ = c.CloseWrite()
	select {
	case s := <-got:
		if s != "after" {
			t.Errorf("server read %q, want %q", s, "after")
		}
	case <-time.After(10 * time.Second):
		t.Fatal("server never saw the client's bytes after its own half-close")
	}
}

func TestPortTranslation(t *testing.T) {
	be := serve(t, func(c *net.TCPConn) {
		fmt.Fprint(c, c.LocalAddr().(*net.TCPAddr).Port)
	})
	f := startFront(t, "rr", 0, rs(be.Port()))
	vsPort := f.ln.Addr().(*net.TCPAddr).Port
	if vsPort == be.Port() {
		t.Fatal("test setup: same ports")
	}
	c := f.dial(t)
	defer c.Close()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	if string(b) != strconv.Itoa(be.Port()) {
		t.Errorf("connection to VS port %d reached port %s, want RS port %d", vsPort, b, be.Port())
	}
}

func TestIdleTimeout(t *testing.T) {
	const idle = time.Second
	be := serve(t, echo)
	f := startFront(t, "rr", idle, rs(be.Port()))

	t.Run("idle connection is closed", func(t *testing.T) {
		for _, sendFirst := range []bool{false, true} {
			c := f.dial(t)
			start := time.Now()
			if sendFirst {
				if _, err := c.Write([]byte("ping")); err != nil {
					t.Fatal(err)
				}
				b := make([]byte, 4)
				if _, err := io.ReadFull(c, b); err != nil {
					t.Fatal(err)
				}
			}
			// Generous bound: closed within 15 s; never before half the timeout.
			_ = c.SetReadDeadline(time.Now().Add(15 * time.Second))
			_, err := c.Read(make([]byte, 1))
			elapsed := time.Since(start)
			c.Close()
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				t.Fatalf("idle connection (sent first: %v) still open after 15 s", sendFirst)
			}
			if elapsed < idle/2 {
				t.Errorf("closed after %v, before the idle timeout of %v", elapsed, idle)
			}
		}
	})

	t.Run("active connection stays open", func(t *testing.T) {
		c := f.dial(t)
		defer c.Close()
		b := make([]byte, 1)
		// 15 round trips 200 ms apart: 3 s, three idle periods.
		for i := range 15 {
			if _, err := c.Write([]byte{byte(i)}); err != nil {
				t.Fatalf("write %d: %v", i, err)
			}
			if _, err := io.ReadFull(c, b); err != nil || b[0] != byte(i) {
				t.Fatalf("round trip %d: %v", i, err)
			}
			time.Sleep(200 * time.Millisecond)
		}
	})
}

func TestDialFailureRetried(t *testing.T) {
	be := serve(t, echo)
	dead1, dead2 := rs(testkit.FreePort(t, "127.0.0.1")), rs(testkit.FreePort(t, "127.0.0.1"))
	live := rs(be.Port())
	for _, method := range []string{"rr", "wrr", "lc", "wlc"} {
		t.Run(method, func(t *testing.T) {
			f := startFront(t, method, 0, dead1, live, dead2)
			for i := range 6 {
				c := f.dial(t)
				if _, err := c.Write([]byte("hi")); err != nil {
					t.Fatal(err)
				}
				b := make([]byte, 2)
				if _, err := io.ReadFull(c, b); err != nil {
					t.Fatalf("connection %d: %v (dead servers not skipped)", i, err)
				}
				c.Close()
			}
		})
	}
	if dead1.Failures() == 0 || dead2.Failures() == 0 {
		t.Errorf("failures: %d, %d; want both counted", dead1.Failures(), dead2.Failures())
	}
	if live.Failures() != 0 {
		t.Errorf("live server has %d failures", live.Failures())
	}
	eventually(t, "reservations released", func() bool {
		return dead1.Active() == 0 && dead2.Active() == 0 && live.Active() == 0
	})
}

func TestNoServerClosesClient(t *testing.T) {
	for _, tc := range []struct {
		name    string
		servers []*backend.Server
	}{
		{"no real server", nil},
		{"all real servers dead", []*backend.Server{rs(testkit.FreePort(t, "127.0.0.1")), rs(testkit.FreePort(t, "127.0.0.1"))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := startFront(t, "rr", 0, tc.servers...)
			c := f.dial(t)
			defer c.Close()
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			_, err := c.Read(make([]byte, 1))
			var ne net.Error
			if err == nil || (errors.As(err, &ne) && ne.Timeout()) {
				t.Fatalf("client connection not closed: read err %v", err)
			}
			var fails int64
			for _, s := range tc.servers {
				fails += s.Failures()
			}
			if len(tc.servers) > 0 && (fails < 2 || fails > MaxDialRetries+1) {
				t.Errorf("%d dial failures counted, want 2..%d", fails, MaxDialRetries+1)
			}
		})
	}
}

func TestCloseEndsConnections(t *testing.T) {
	be := serve(t, echo)
	srv := rs(be.Port())
	f := startFront(t, "rr", 0, srv)
	var conns []*net.TCPConn
	for range 5 {
		c := f.dial(t)
		defer c.Close()
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
	}
	if n := f.proxy.Active(); n != 5 {
		t.Fatalf("Active() = %d, want 5", n)
	}
	if srv.OpenConns() != 5 {
		t.Fatalf("OpenConns() = %d, want 5", srv.OpenConns())
	}
	f.close()
	for i, c := range conns {
		_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Read(make([]byte, 1)); err == nil {
			t.Errorf("connection %d still open after Close", i)
		}
	}
	if n := f.proxy.Active(); n != 0 {
		t.Errorf("Active() = %d after Close", n)
	}
	// A connection handed over after Close is closed at once.
	a, b := net.Pipe()
	defer a.Close()
	f.proxy.Service(ServiceConfig{Picker: nil}).Handle(b)
	if _, err := a.Read(make([]byte, 1)); err == nil {
		t.Error("non-TCP connection not closed")
	}
}

func TestDropOnServer(t *testing.T) {
	// CloseConns on a real server ends its proxied connections (the hook a
	// later health-check task uses to drop connections on failure).
	be := serve(t, echo)
	srv := rs(be.Port())
	f := startFront(t, "rr", 0, srv)
	c := f.dial(t)
	defer c.Close()
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	if n := srv.CloseConns(); n != 1 {
		t.Fatalf("CloseConns() = %d, want 1", n)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.ReadAll(c); err != nil {
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			t.Fatal("client not closed after its server connection was dropped")
		}
	}
}
