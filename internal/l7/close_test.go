package l7

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"golang.org/x/time/rate"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// TestCloseEndsEverything: Proxy.Close ends a request waiting on a slow
// real server and an idle keep-alive connection, and returns promptly;
// connections handed over afterwards are closed at once.
func TestCloseEndsEverything(t *testing.T) {
	release := make(chan struct{})
	slow := startReal(t, "slow", "127.0.0.3", 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}), nil)
	defer close(release)
	f := startVS(t, plainVSPort(t, "", slow))
	waiting, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer waiting.Close()
	fmt.Fprint(waiting, "GET /slow HTTP/1.1\r\nHost: x\r\n\r\n")
	idle, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer idle.Close()
	waitFor(t, "the slow request to reach the real server", func() bool { return slow.requests.Load() == 1 })
	waitFor(t, "both connections accepted", func() bool { return f.proxy.Active() == 2 })
	start := time.Now()
	if err := f.proxy.Close(); err != nil {
		t.Fatal(err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Close took %v", d)
	}
	for _, c := range []net.Conn{waiting, idle} {
		_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.ReadAll(c); err != nil {
			t.Errorf("connection not closed by Close: %v", err)
		}
	}
	a, b := net.Pipe()
	defer b.Close()
	f.svc.Handle(a)
	_ = b.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := b.Read(make([]byte, 1)); err != io.EOF && err != io.ErrClosedPipe {
		t.Errorf("a connection handed over after Close: %v", err)
	}
}

// TestAdmissionLimits: MaxConns closes connections beyond the limit when
// no connection can make room (the one there is in the middle of a
// request), and RequestRate answers 429 above its rate.
func TestAdmissionLimits(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	f := startVS(t, plainVSPort(t, "", a))
	cfg := f.svc.Config()
	cfg.MaxConns = 1
	cfg.RequestRate = rate.NewLimiter(rate.Every(time.Hour), 2)
	if err := f.svc.Update(cfg); err != nil {
		t.Fatal(err)
	}
	first, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	waitFor(t, "the first connection accepted", func() bool { return f.proxy.Active() == 1 })
	fmt.Fprint(first, "GET / HTTP/1.1\r\n") // in the middle of a request: not idle
	waitFor(t, "the first connection busy", func() bool {
		for _, m := range f.proxy.marks() {
			if m.idle.Load() == 0 {
				return true
			}
		}
		return false
	})
	second, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	_ = second.SetReadDeadline(time.Now().Add(5 * time.Second))
	if n, err := second.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("a connection beyond maxConns was served: %d %v", n, err)
	}
	_ = first.SetDeadline(time.Now().Add(5 * time.Second))
	br := bufio.NewReader(first)
	var codes []int
	fmt.Fprint(first, "Host: x\r\n\r\n")
	for i := range 3 {
		if i > 0 {
			fmt.Fprint(first, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		}
		resp := readResponse(t, br, "GET")
		_, _ = io.Copy(io.Discard, resp.Body)
		codes = append(codes, resp.StatusCode)
	}
	if fmt.Sprint(codes) != "[200 200 429]" {
		t.Errorf("statuses %v, want [200 200 429]", codes)
	}
}

// TestServiceClose: a retired service closes new connections and keeps
// serving the ones it has.
func TestServiceClose(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	f := startVS(t, plainVSPort(t, "", a))
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp := readResponse(t, br, "GET")
	_, _ = io.Copy(io.Discard, resp.Body)
	if err := f.svc.Close(); err != nil {
		t.Fatal(err)
	}
	fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	if resp := readResponse(t, br, "GET"); resp.StatusCode != 200 {
		t.Errorf("a connection of a closed service: %d", resp.StatusCode)
	}
	n, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	_ = n.SetReadDeadline(time.Now().Add(5 * time.Second))
	if _, err := n.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("a new connection to a closed service: %v", err)
	}
}

// marks returns the connection marks of the proxy's client connections.
func (p *Proxy) marks() []*connMark {
	p.mu.Lock()
	defer p.mu.Unlock()
	var out []*connMark
	for _, m := range p.conns {
		out = append(out, m)
	}
	return out
}

// TestIdleConnectionsMakeRoom: at maxConns, a new connection takes the
// place of the longest idle one (a flood of idle connections cannot lock
// real clients out), never of one in the middle of a request; the closed
// one is counted.
func TestIdleConnectionsMakeRoom(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	f := startVS(t, plainVSPort(t, "", a))
	cfg := f.svc.Config()
	cfg.MaxConns = 2
	if err := f.svc.Update(cfg); err != nil {
		t.Fatal(err)
	}
	dial := func() net.Conn {
		c, err := net.Dial("tcp", f.addr)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		return c
	}
	idle := dial() // sends nothing: idle from the start
	waitFor(t, "the idle connection", func() bool { return f.proxy.Active() == 1 })
	time.Sleep(10 * time.Millisecond)
	busy := dial()
	fmt.Fprint(busy, "GET / HTTP/1.1\r\n") // in the middle of a request
	waitFor(t, "both connections", func() bool { return f.proxy.Active() == 2 })
	time.Sleep(10 * time.Millisecond)
	newcomer := dial()
	fmt.Fprint(newcomer, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
	resp := readResponse(t, bufio.NewReader(newcomer), "GET")
	if resp.StatusCode != 200 {
		t.Fatalf("the newcomer got %d", resp.StatusCode)
	}
	if n, err := idle.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("the idle connection was not closed to make room: %d %v", n, err)
	}
	fmt.Fprint(busy, "Host: x\r\n\r\n")
	if resp := readResponse(t, bufio.NewReader(busy), "GET"); resp.StatusCode != 200 {
		t.Errorf("the busy connection got %d", resp.StatusCode)
	}
	if n := cfg.Stats.LimitHits(backend.LimitSessions); n != 1 {
		t.Errorf("%d connections counted as closed to make room, want 1", n)
	}
}
