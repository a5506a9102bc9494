package metrics

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/l4"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// okHandler answers every request with "ok" after reading its body; a
// request for /wait waits 200 ms first.
var okHandler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	if r.URL.Path == "/wait" {
		time.Sleep(200 * time.Millisecond)
	}
	fmt.Fprint(w, "ok")
})

// TestIdleConnsMeasured: after keep-alive requests (four at a time, so
// that the pool holds several connections), each real server's count of
// idle pooled connections equals the connections made to it (its server
// keeps them open, so all are in the pool) and the HAProxy gauges show
// it; removing a real server replaces the pool and the count of the one
// left drops to 0.
func TestIdleConnsMeasured(t *testing.T) {
	p := newPlane(t, 0)
	b1, b2 := testkit.StartHTTP(t, "127.0.0.1", okHandler), testkit.StartHTTP(t, "127.0.0.1", okHandler)
	port := testkit.FreePort(t, "127.0.0.1")
	rs1 := config.RealServer{ID: 2, Address: "127.0.0.1", Port: b1.Port(), Weight: 1}
	rs2 := config.RealServer{ID: 3, Address: "127.0.0.1", Port: b2.Port(), Weight: 1}
	vs := config.VirtualService{ID: 1, NickName: "web", Address: "127.0.0.1", Port: port, Protocol: "tcp", Type: "http",
		Schedule: "rr", HealthCheck: config.HealthCheck{Type: "none"}, RealServers: []config.RealServer{rs1, rs2}}
	p.apply(t, nil, vs)
	url := "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/wait"
	tr := &http.Transport{MaxIdleConnsPerHost: 4}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 20 * time.Second}
	for range 3 {
		var wg sync.WaitGroup
		errs := make(chan error, 4)
		for range 4 {
			wg.Go(func() {
				resp, err := c.Get(url)
				if err != nil {
					errs <- err
					return
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				_ = resp.Body.Close()
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatal(err)
		}
	}
	testkit.EventuallyState(t, 10*time.Second, func() (bool, string) {
		st := p.e.Status()[0]
		ok := st.L7.HTTP.Requests == 12
		var s []string
		for _, rs := range st.RealServers {
			ok = ok && rs.ActiveConns == 0 && rs.IdleConns == rs.TotalConns && rs.IdleConns > 0
			s = append(s, fmt.Sprintf("rs %d: idle %d, connections %d, active %d", rs.ID, rs.IdleConns, rs.TotalConns, rs.ActiveConns))
		}
		return ok, strings.Join(s, "; ")
	}, "every connection made to be idle in the pool")
	fams := p.scrape(t)
	for _, rs := range p.e.Status()[0].RealServers {
		var v, safe float64
		for _, s := range fams["haproxy_server_idle_connections_current"].series {
			if s.labels["proxy"] == "web" && strings.Contains(s.labels["server"], strconv.Itoa(rs.Port)) {
				v += s.value
			}
		}
		for _, s := range fams["haproxy_server_safe_idle_connections_current"].series {
			if s.labels["proxy"] == "web" && strings.Contains(s.labels["server"], strconv.Itoa(rs.Port)) {
				safe += s.value
			}
		}
		if v != float64(rs.IdleConns) || safe != v {
			t.Errorf("real server %d: idle_connections_current %v, safe %v, status %d", rs.ID, v, safe, rs.IdleConns)
		}
	}

	// Remove the first real server: the service's pool is replaced.
	vs.RealServers = []config.RealServer{rs2}
	p.apply(t, nil, vs)
	testkit.EventuallyState(t, 10*time.Second, func() (bool, string) {
		rs := p.e.Status()[0].RealServers
		return len(rs) == 1 && rs[0].IdleConns == 0, fmt.Sprintf("%+v", rs)
	}, "the idle count to drop to 0 when the pool is replaced")
	if v := metric(t, p.scrape(t), "haproxy_server_idle_connections_current", map[string]string{"proxy": "web"}); v != 0 {
		t.Errorf("idle_connections_current after the removal = %v, want 0", v)
	}
}

// TestTLSHandshakesMeasured: through a TLS-offloading service, two clients
// without a session make full handshakes and three more connections of
// one of them resume its session by ticket; the process's handshake
// counters, resumed share, open TLS connections and key rates say so. A
// re-encrypting service's full handshakes with its real servers show in
// the backend key rate.
func TestTLSHandshakesMeasured(t *testing.T) {
	ca := testkit.NewCA(t, "Handshake Test Root")
	cert := ca.Server(t, "www.example.test", "127.0.0.1")
	backendTLS := ca.Server(t, "127.0.0.1").TLS()
	plain := testkit.StartHTTP(t, "127.0.0.1", okHandler)
	secure := testkit.StartHTTPS(t, "127.0.0.1", okHandler, backendTLS)
	p := newPlane(t, 0)
	offPort, rePort := testkit.FreePort(t, "127.0.0.1"), testkit.FreePort(t, "127.0.0.1")
	none := config.HealthCheck{Type: "none"}
	off := config.VirtualService{ID: 1, NickName: "off", Address: "127.0.0.1", Port: offPort, Protocol: "tcp", Type: "http",
		HealthCheck: none, TLS: config.TLS{Offload: true, Certificates: []string{"site"}},
		RealServers: []config.RealServer{{ID: 2, Address: "127.0.0.1", Port: plain.Port(), Weight: 1}}}
	re := config.VirtualService{ID: 3, NickName: "re", Address: "127.0.0.1", Port: rePort, Protocol: "tcp", Type: "http",
		HealthCheck: none, TLS: config.TLS{Offload: true, Reencrypt: true, Certificates: []string{"site"}},
		RealServers: []config.RealServer{{ID: 4, Address: "127.0.0.1", Port: secure.Port(), Weight: 1}}}
	p.apply(t, func(c *config.Config) {
		c.Certificates = []config.Certificate{{Name: "site", CertPEM: cert.CertPEM(), KeyPEM: cert.KeyPEM()}}
	}, off, re)

	// request makes one connection to port with conf, sends one request
	// on it and closes it; the session ticket arrives with the answer.
	request := func(port int, conf *tls.Config) bool {
		t.Helper()
		c, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), conf)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: www.example.test\r\nConnection: close\r\n\r\n")
		b, err := io.ReadAll(c)
		if err != nil || !strings.Contains(string(b), "200 OK") {
			t.Fatalf("answer: %v %q", err, b)
		}
		return c.ConnectionState().DidResume
	}
	newConf := func() *tls.Config {
		return &tls.Config{RootCAs: ca.Pool(), ServerName: "www.example.test", ClientSessionCache: tls.NewLRUClientSessionCache(8)}
	}
	const full, resumed = 2, 3
	a, b := newConf(), newConf()
	var sawResumed int
	for _, conf := range []*tls.Config{a, b} {
		if request(offPort, conf) {
			t.Fatal("a first connection resumed a session")
		}
	}
	for range resumed {
		if request(offPort, a) {
			sawResumed++
		}
	}
	if sawResumed != resumed {
		t.Fatalf("the client resumed %d of %d connections", sawResumed, resumed)
	}
	// One connection held open.
	held, err := tls.Dial("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(offPort)), newConf())
	if err != nil {
		t.Fatal(err)
	}
	testkit.EventuallyState(t, 10*time.Second, func() (bool, string) {
		pr := p.e.Limits().Process
		return pr.TLSHandshakes == full+resumed+1 && pr.TLSResumed == resumed && pr.TLSConns == 1 && pr.MaxClientKeyRate > 0,
			fmt.Sprintf("%+v", pr)
	}, "the handshakes to be counted")
	fams := p.scrape(t)
	for name, want := range map[string]float64{
		"haproxy_process_ssl_connections_total":   full + resumed + 1,
		"haproxy_process_current_ssl_connections": 1,
		"haproxy_process_frontend_ssl_reuse":      100 * float64(resumed) / float64(full+resumed+1),
	} {
		if v := metric(t, fams, name, nil); v != want {
			t.Errorf("%s = %v, want %v", name, v, want)
		}
	}
	if v := metric(t, fams, "haproxy_process_max_frontend_ssl_key_rate", nil); v <= 0 {
		t.Errorf("max_frontend_ssl_key_rate = %v after %d full handshakes", v, full+1)
	}
	_ = held.Close()
	testkit.Eventually(t, 10*time.Second, func() bool { return p.e.Limits().Process.TLSConns == 0 },
		"the open TLS connections to drop to 0")

	// The re-encrypting service: each client connection (keep-alive off)
	// may reuse a kept connection to the real server; new ones are full
	// handshakes (Fulcrum keeps no client session cache towards them).
	for range 3 {
		request(rePort, newConf())
	}
	testkit.EventuallyState(t, 10*time.Second, func() (bool, string) {
		pr := p.e.Limits().Process
		rs := p.e.Status()[1].RealServers[0]
		return pr.MaxServerKeyRate > 0 && rs.TotalConns > 0,
			fmt.Sprintf("server key rate %v max %v; real server connections %d", pr.ServerKeyRate, pr.MaxServerKeyRate, rs.TotalConns)
	}, "the full handshakes with the real server to be counted")
	if v := metric(t, p.scrape(t), "haproxy_process_max_backend_ssl_key_rate", nil); v <= 0 {
		t.Errorf("max_backend_ssl_key_rate = %v after handshakes with a real server", v)
	}
}

// TestSplicedMeasured: a layer-4 service moves a known large payload to a
// real server that reads it all; the bytes moved by splice(2) grow by the
// payload less what the first user-space reads carried (the copy moves to
// splice at the first read that fills its 16 KiB buffer), and never by
// more than the payload.
func TestSplicedMeasured(t *testing.T) {
	const payload = 8 << 20
	got := make(chan int64, 1)
	sink := testkit.StartTCP(t, "127.0.0.1", func(c net.Conn) {
		n, _ := io.Copy(io.Discard, c)
		got <- n
	})
	p := newPlane(t, 0)
	port := testkit.FreePort(t, "127.0.0.1")
	p.apply(t, nil, config.VirtualService{ID: 1, NickName: "bulk", Address: "127.0.0.1", Port: port, Protocol: "tcp",
		HealthCheck: config.HealthCheck{Type: "none"}, RealServers: []config.RealServer{{ID: 2, Address: "127.0.0.1", Port: sink.Port(), Weight: 1}}})
	before := p.e.Limits().Process.SplicedBytes
	beforeMetric := metric(t, p.scrape(t), "haproxy_process_spliced_bytes_out_total", nil)
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	if _, err := c.Write(make([]byte, payload)); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	select {
	case n := <-got:
		if n != payload {
			t.Fatalf("the real server received %d bytes, want %d", n, payload)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("the real server did not receive the payload")
	}
	_ = c.Close()
	var delta int64
	testkit.EventuallyState(t, 10*time.Second, func() (bool, string) {
		delta = p.e.Limits().Process.SplicedBytes - before
		return delta >= payload/2, fmt.Sprintf("spliced %d of %d bytes", delta, payload)
	}, "the spliced bytes to be counted")
	if delta > payload {
		t.Errorf("spliced %d bytes, more than the %d moved", delta, payload)
	}
	t.Logf("spliced %d of %d bytes (%d through user space first)", delta, payload, payload-delta)
	if v := metric(t, p.scrape(t), "haproxy_process_spliced_bytes_out_total", nil) - beforeMetric; v < float64(delta) {
		t.Errorf("spliced_bytes_out_total grew by %v, the status by %d", v, delta)
	}
	if l4.SplicedBytes() < before+delta {
		t.Errorf("l4.SplicedBytes %d below the status's %d", l4.SplicedBytes(), before+delta)
	}
}

// TestProcessValuesMeasured: listeners equal the services' open sockets
// (extra ports included), jobs add the client connections open, stopping
// is 0 while the data plane runs and idle_time_percent is a percentage.
func TestProcessValuesMeasured(t *testing.T) {
	p := newPlane(t, 0)
	echo := testkit.StartTCPEcho(t, "127.0.0.1")
	web := testkit.StartHTTP(t, "127.0.0.1", okHandler)
	ports := testkit.FreePorts(t, "127.0.0.1", 4)
	none := config.HealthCheck{Type: "none"}
	p.apply(t, nil,
		config.VirtualService{ID: 1, NickName: "tcp", Address: "127.0.0.1", Port: ports[0], ExtraPorts: strconv.Itoa(ports[1]), Protocol: "tcp",
			HealthCheck: none, RealServers: []config.RealServer{{ID: 2, Address: "127.0.0.1", Port: echo.Port(), Weight: 1}}},
		config.VirtualService{ID: 3, NickName: "web", Address: "127.0.0.1", Port: ports[2], Protocol: "tcp", Type: "http",
			HealthCheck: none, RealServers: []config.RealServer{{ID: 4, Address: "127.0.0.1", Port: web.Port(), Weight: 1}}},
	)
	var sockets int
	for _, vs := range p.e.Status() {
		for _, s := range vs.Sockets {
			if s.Listening {
				sockets++
			}
		}
	}
	if sockets != 3 {
		t.Fatalf("%d open sockets in the status, want 3", sockets)
	}
	c, err := net.DialTimeout("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(ports[1])), 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("x")); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadFull(c, make([]byte, 1)); err != nil {
		t.Fatal(err)
	}
	testkit.Eventually(t, 5*time.Second, func() bool { return p.e.Limits().Conns == 1 }, "the connection to be counted")
	fams := p.scrape(t)
	if v := metric(t, fams, "haproxy_process_listeners", nil); v != float64(sockets) {
		t.Errorf("listeners = %v, the services have %d open sockets", v, sockets)
	}
	if v := metric(t, fams, "haproxy_process_jobs", nil); v != float64(sockets+1) {
		t.Errorf("jobs = %v, want %d sockets + 1 connection", v, sockets)
	}
	if v := metric(t, fams, "haproxy_process_stopping", nil); v != 0 {
		t.Errorf("stopping = %v while running", v)
	}
	// Two scrapes: the second measures the time between them.
	if v := metric(t, p.scrape(t), "haproxy_process_idle_time_percent", nil); v < 0 || v > 100 {
		t.Errorf("idle_time_percent = %v, not a percentage", v)
	}
}

// TestThrottleMeasured: with options.slowStart, a real server that has
// just come up has a current_throttle of 0 until it is given a request
// (the pickers start its ramp then), then one below 100 that rises;
// without slow start it is 100.
func TestThrottleMeasured(t *testing.T) {
	for _, tc := range []struct {
		name      string
		slowStart int
	}{{"slow start", 30}, {"none", 0}} {
		t.Run(tc.name, func(t *testing.T) {
			p := newPlane(t, 50*time.Millisecond)
			srv := startRestartable(t)
			port := testkit.FreePort(t, "127.0.0.1")
			p.apply(t, func(c *config.Config) { c.Options.SlowStart = tc.slowStart },
				config.VirtualService{ID: 1, NickName: "web", Address: "127.0.0.1", Port: port, Protocol: "tcp", Type: "http",
					HealthCheck: config.HealthCheck{Type: "tcp"}, RealServers: []config.RealServer{{ID: 2, Address: "127.0.0.1", Port: srv.port(), Weight: 1}}})
			throttle := func() (float64, string) {
				rs := p.e.Status()[0].RealServers[0]
				return metric(t, p.scrape(t), "haproxy_server_current_throttle", map[string]string{"proxy": "web"}),
					fmt.Sprintf("status %s, available since %v", rs.Status, rs.AvailableSince)
			}
			// Down, then Up again: a server that has just come up.
			testkit.Eventually(t, 10*time.Second, func() bool { return p.e.Status()[0].RealServers[0].Status == "Up" }, "the server to be Up")
			srv.stop()
			testkit.Eventually(t, 10*time.Second, func() bool { return p.e.Status()[0].RealServers[0].Status == "Down" }, "the server to be Down")
			srv.start()
			testkit.Eventually(t, 10*time.Second, func() bool { return p.e.Status()[0].RealServers[0].Status == "Up" }, "the server to be Up again")
			first, s := throttle()
			if tc.slowStart == 0 {
				if first != 100 {
					t.Errorf("throttle %v without slow start (%s), want 100", first, s)
				}
				return
			}
			if first != 0 {
				t.Fatalf("throttle %v just after coming up, before any request (%s), want 0", first, s)
			}
			// The ramp starts with the first request the server is given.
			hc := &http.Client{Timeout: 10 * time.Second}
			resp, err := hc.Get("http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(port)) + "/")
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			_ = resp.Body.Close()
			hc.CloseIdleConnections()
			second, s := throttle()
			if second <= 0 || second >= 100 {
				t.Fatalf("throttle %v after a request (%s), want in (0, 100)", second, s)
			}
			testkit.EventuallyState(t, 10*time.Second, func() (bool, string) {
				v, s := throttle()
				return v > second && v < 100, fmt.Sprintf("throttle %v (then %v), %s", v, second, s)
			}, "the throttle to rise")
		})
	}
}
