package balance_test

import (
	"bufio"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/l4"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// slowServer is a real TCP server started by the test: it reads one line
// holding a duration in milliseconds, waits that long times its slowness
// (or until the client goes away), answers "ok" and closes.
type slowServer struct {
	srv    *testkit.TCPServer
	slow   atomic.Int64 // factor
	served atomic.Int64
}

func startSlowServer(t *testing.T, ip string) *slowServer {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.ParseIP(ip)})
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot listen on %s in CI: %v", ip, err)
		}
		t.Skipf("cannot listen on %s: %v", ip, err)
	}
	s := &slowServer{}
	s.slow.Store(1)
	s.srv = testkit.ServeTCP(t, ln, func(c net.Conn) { s.handle(c.(*net.TCPConn)) })
	return s
}

func (s *slowServer) handle(c *net.TCPConn) {
	r := bufio.NewReader(c)
	line, err := r.ReadString('\n')
	if err != nil {
		return
	}
	ms, err := strconv.Atoi(strings.TrimSpace(line))
	if err != nil || ms < 0 || ms > 60_000 {
		return
	}
	gone := make(chan struct{})
	go func() { // the client closing ends the wait
		_, _ = r.ReadByte()
		close(gone)
	}()
	t := time.NewTimer(time.Duration(ms) * time.Millisecond * time.Duration(s.slow.Load()))
	defer t.Stop()
	select {
	case <-t.C:
		s.served.Add(1)
		_, _ = c.Write([]byte("ok\n"))
		_ = c.CloseWrite()
		<-gone
	case <-gone:
	}
}

func (s *slowServer) key() backend.Key {
	a := s.srv.Listener().Addr().(*net.TCPAddr)
	return backend.Key{VS: 1, Address: a.IP.String(), Port: a.Port}
}

// TestEndToEndLeastConnection runs least connection through the layer-4
// proxy to three real servers, with closed-loop clients sending a mix of
// 10 ms and 2 s requests, and samples each server's active connections.
// Phase 1, equal servers: the time-averaged active counts stay within a
// ratio max/min ≤ 1.5. Phase 2, one server 5× slower: it holds about the
// same number of connections as the others (not overloaded: ≤ 1.5× the
// least loaded) and still completes requests (not starved: at least half
// of the 1/5 share its speed allows).
func TestEndToEndLeastConnection(t *testing.T) {
	if testing.Short() {
		t.Skip("end-to-end test takes about 12 s")
	}
	backends := []*slowServer{startSlowServer(t, "127.0.0.2"), startSlowServer(t, "127.0.0.3"), startSlowServer(t, "127.0.0.4")}
	servers := make([]*backend.Server, len(backends))
	for i, b := range backends {
		servers[i] = backend.NewServer(b.key(), backend.Settings{ID: i + 1, Weight: 1000, Enabled: true})
	}
	picker, err := balance.New("lc", servers)
	if err != nil {
		t.Fatal(err)
	}
	proxy := l4.New(l4.Options{Logger: slog.New(slog.DiscardHandler)})
	svc := proxy.Service(l4.ServiceConfig{Name: "e2e", Picker: picker, IdleTimeout: time.Minute})
	front := testkit.Listen(t, "127.0.0.1").(*net.TCPListener)
	acceptDone := make(chan struct{})
	go func() {
		defer close(acceptDone)
		for {
			c, err := front.AcceptTCP()
			if err != nil {
				return
			}
			svc.Handle(c)
		}
	}()
	defer func() {
		front.Close()
		<-acceptDone
		_ = proxy.Close()
	}()

	phase := func(name string, d time.Duration) (avg []float64, served []int64) {
		const workers = 30
		stop := make(chan struct{})
		var wg sync.WaitGroup
		start := make([]int64, len(backends))
		for i, b := range backends {
			start[i] = b.served.Load()
		}
		var failures atomic.Int64
		for w := range workers {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := rand.New(rand.NewPCG(uint64(w), 99))
				for {
					select {
					case <-stop:
						return
					default:
					}
					ms := 10
					if r.IntN(10) == 0 {
						ms = 2000
					}
					if !request(front.Addr().String(), ms, stop) {
						failures.Add(1)
					}
				}
			}()
		}
		// Sample after a warm-up, every 10 ms.
		time.Sleep(time.Second)
		sums := make([]float64, len(servers))
		samples := 0
		tick := time.NewTicker(10 * time.Millisecond)
		end := time.After(d)
	loop:
		for {
			select {
			case <-tick.C:
				for i, s := range servers {
					sums[i] += float64(s.Active())
				}
				samples++
			case <-end:
				break loop
			}
		}
		tick.Stop()
		close(stop)
		wg.Wait()
		avg = make([]float64, len(servers))
		served = make([]int64, len(servers))
		for i := range servers {
			avg[i] = sums[i] / float64(samples)
			served[i] = backends[i].served.Load() - start[i]
		}
		t.Logf("%s: %d samples, average active %.2f, requests completed %v, failed %d", name, samples, avg, served, failures.Load())
		return avg, served
	}

	avg, _ := phase("equal servers", 5*time.Second)
	if lo, hi := minMax(avg); lo <= 0 || hi/lo > 1.5 {
		t.Errorf("equal servers: average active %.2f, max/min %.2f > 1.5", avg, hi/lo)
	}
	for i, s := range servers {
		waitIdle(t, s, i)
	}

	backends[2].slow.Store(5)
	avg, served := phase("server 3 five times slower", 5*time.Second)
	lo, _ := minMax(avg[:2])
	if avg[2] > 1.5*lo {
		t.Errorf("slow server overloaded: average active %.2f against %.2f on the others", avg[2], avg[:2])
	}
	if avg[2] < lo/1.5 {
		t.Errorf("slow server starved of connections: average active %.2f against %.2f", avg[2], avg[:2])
	}
	fair := float64(served[0]+served[1]) / 2 / 5
	if float64(served[2]) < fair/2 {
		t.Errorf("slow server starved: %d requests completed, its speed allows about %.0f", served[2], fair)
	}
	for i, s := range servers {
		waitIdle(t, s, i)
	}
}

// request sends one request of ms milliseconds through the proxy and
// reports whether it was answered; it gives up when stop closes.
func request(addr string, ms int, stop <-chan struct{}) bool {
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return false
	}
	defer c.Close()
	done := make(chan struct{})
	defer close(done)
	go func() {
		select {
		case <-stop:
			c.Close()
		case <-done:
		}
	}()
	_ = c.SetDeadline(time.Now().Add(time.Minute))
	if _, err := fmt.Fprintf(c, "%d\n", ms); err != nil {
		return false
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	return err == nil && line == "ok\n"
}

func minMax(xs []float64) (lo, hi float64) {
	lo, hi = xs[0], xs[0]
	for _, x := range xs[1:] {
		lo, hi = min(lo, x), max(hi, x)
	}
	return lo, hi
}

// waitIdle waits until the proxy has let go of every connection to s.
func waitIdle(t *testing.T, s *backend.Server, i int) {
	t.Helper()
	testkit.EventuallyState(t, 15*time.Second, func() (bool, string) {
		a := s.Active()
		return a == 0, fmt.Sprintf("server %d still has %d active connections", i, a)
	}, fmt.Sprintf("server %d to be idle", i))
}
