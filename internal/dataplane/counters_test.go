package dataplane

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/health"
	"github.com/fulcrum-lb/fulcrum/internal/status"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// byteCount counts the bytes read and written through counted conns.
type byteCount struct{ read, written atomic.Int64 }

// countedConn is a net.Conn that counts its bytes on n.
type countedConn struct {
	net.Conn
	n *byteCount
}

func (c countedConn) Read(p []byte) (int, error) {
	k, err := c.Conn.Read(p)
	c.n.read.Add(int64(k))
	return k, err
}

func (c countedConn) Write(p []byte) (int, error) {
	k, err := c.Conn.Write(p)
	c.n.written.Add(int64(k))
	return k, err
}

// countedListener counts the bytes of every connection it accepts on n.
type countedListener struct {
	net.Listener
	n *byteCount
}

func (l countedListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err != nil {
		return nil, err
	}
	return countedConn{c, l.n}, nil
}

// countedWeb is a real HTTP server that counts its bytes and requests:
// "/s/<code>" answers <code> with a short body; request bodies are read.
type countedWeb struct {
	port     int
	bytes    byteCount
	requests atomic.Int64
}

func startCountedWeb(t *testing.T, tag string) *countedWeb {
	w := &countedWeb{}
	ln := testkit.Listen(t, "127.0.0.1")
	w.port = ln.Addr().(*net.TCPAddr).Port
	testkit.ServeHTTP(t, countedListener{ln, &w.bytes}, http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
		w.requests.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		code := 200
		if i := strings.LastIndex(r.URL.Path, "/s/"); i >= 0 {
			code, _ = strconv.Atoi(r.URL.Path[i+3:])
		}
		rw.Header().Set("X-Backend", tag)
		rw.WriteHeader(code)
		fmt.Fprintf(rw, "%s answered %s", tag, r.URL.Path)
	}), nil)
	return w
}

// startMute is a real server that reads each request head and closes the
// connection without an answer; it counts the requests it received.
func startMute(t *testing.T) (port int, requests *atomic.Int64) {
	requests = new(atomic.Int64)
	s := testkit.StartTCP(t, "127.0.0.1", func(c net.Conn) {
		defer c.Close()
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			if line == "\r\n" {
				requests.Add(1)
				return
			}
		}
	})
	return s.Port(), requests
}

// h2Size is the size of header fields by Fulcrum's HTTP/2 rule: name +
// value + 4 per field.
func h2Size(h http.Header) int64 {
	var n int64
	for k, vs := range h {
		for _, v := range vs {
			n += int64(len(k) + len(v) + 4)
		}
	}
	return n
}

// TestL7Counters sends requests through HTTP, HTTPS and HTTP/2 services
// (one with SubVSs, one whose first real server fails every request) and
// checks that the status's request counters equal what the clients and
// real servers counted, exactly, and the byte counters too (HTTP/2 by
// its header rule).
func TestL7Counters(t *testing.T) {
	const n = 200
	p := newTestPKI(t)
	for _, tc := range []struct {
		name  string
		tls   bool
		h2    bool
		subVS bool
		mute  bool // a real server that fails every request it gets
	}{
		{name: "http"},
		{name: "https", tls: true},
		{name: "http2", tls: true, h2: true},
		{name: "subvs", subVS: true},
		{name: "http2-subvs", tls: true, h2: true, subVS: true},
		{name: "retry", mute: true},
		{name: "http2-retry", tls: true, h2: true, mute: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &accesslog.Memory{}
			e := New(Options{Logger: quiet, AccessLog: rec})
			t.Cleanup(func() { e.Close() })
			webs := []*countedWeb{startCountedWeb(t, "a"), startCountedWeb(t, "b")}
			none := config.HealthCheck{Type: "none"} // only the proxy connects to the real servers
			addr := "127.0.0.9"
			port := testkit.FreePort(t, addr)
			vs := httpVS(1, addr, port)
			vs.HealthCheck, vs.AccessLog = none, true
			var mutePort int
			var muteReqs *atomic.Int64
			switch {
			case tc.subVS:
				vs.SubVSs = []config.VirtualService{
					{ID: 2, Type: "http", HTTP: &config.HTTPSettings{SelectRules: []string{"sub-a"}}, HealthCheck: none,
						RealServers: []config.RealServer{{ID: 21, Address: "127.0.0.1", Port: webs[0].port, Weight: 1}}},
					{ID: 3, Type: "http", NickName: "rest", HealthCheck: none,
						RealServers: []config.RealServer{{ID: 31, Address: "127.0.0.1", Port: webs[1].port, Weight: 1}}},
				}
			case tc.mute:
				mutePort, muteReqs = startMute(t)
				vs.Schedule = "rr"
				vs.RealServers = []config.RealServer{{ID: 10, Address: "127.0.0.1", Port: mutePort, Weight: 1},
					{ID: 11, Address: "127.0.0.1", Port: webs[0].port, Weight: 1}, {ID: 12, Address: "127.0.0.1", Port: webs[1].port, Weight: 1}}
			default:
				vs.RealServers = []config.RealServer{{ID: 11, Address: "127.0.0.1", Port: webs[0].port, Weight: 1},
					{ID: 12, Address: "127.0.0.1", Port: webs[1].port, Weight: 1}}
			}
			if tc.tls {
				vs.TLS = config.TLS{Offload: true, Certificates: []string{"site"}}
			}
			if tc.h2 {
				vs.Type = "http2"
			}
			mustApply(t, e, confWith(t, func(c *config.Config) {
				c.Certificates = []config.Certificate{{Name: "site", CertPEM: p.leafPEM, KeyPEM: p.keyPEM},
					{Name: "inter", Intermediate: true, CertPEM: p.interPEM}}
				c.ContentRules = []config.ContentRule{{Name: "sub-a", Type: "match", Match: "url", Pattern: "^/a/"}}
				// A destination, so that the service logs (to rec).
				c.Options.Logging.AccessLog.File = filepath.Join(t.TempDir(), "access.log")
			}, vs))

			// The client counts its bytes below TLS (the status counts
			// them as on the wire before TLS) or, for HTTP/2, by the rule.
			var cb byteCount
			tlsConf := &tls.Config{RootCAs: p.roots, ServerName: "www.example.test", NextProtos: []string{"http/1.1"}}
			dial := func(ctx context.Context, _, _ string) (net.Conn, error) {
				c, err := (&net.Dialer{}).DialContext(ctx, "tcp", hostPort(addr, port))
				if err != nil {
					return nil, err
				}
				if !tc.tls {
					return countedConn{c, &cb}, nil
				}
				tc := tls.Client(c, tlsConf)
				if err := tc.HandshakeContext(ctx); err != nil {
					_ = c.Close()
					return nil, err
				}
				return countedConn{tc, &cb}, nil
			}
			var rt http.RoundTripper
			if tc.h2 {
				h2conf := tlsConf.Clone()
				h2conf.NextProtos = []string{"h2"}
				rt = &http.Transport{TLSClientConfig: h2conf, ForceAttemptHTTP2: true, DisableCompression: true}
			} else {
				rt = &http.Transport{DialContext: dial, DialTLSContext: dial, DisableCompression: true,
					TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
			}
			client := &http.Client{Transport: rt, Timeout: 20 * time.Second}
			t.Cleanup(client.CloseIdleConnections)
			scheme := "http"
			if tc.tls {
				scheme = "https"
			}
			var classes [6]int64
			var h2In, h2Out int64 // the client's HTTP/2 bytes by the rule
			subA := 0
			for i := range n {
				code := []int{200, 404, 500}[i%3]
				path := fmt.Sprintf("/s/%d", code)
				if tc.subVS && i%2 == 0 {
					path = "/a" + path
					subA++
				}
				method, body := "GET", ""
				if !tc.mute && i%5 == 0 {
					method, body = "POST", strings.Repeat("x", 100+i)
				}
				req, err := http.NewRequest(method, scheme+"://"+hostPort(addr, port)+path, strings.NewReader(body))
				if err != nil {
					t.Fatal(err)
				}
				if body == "" {
					req.Body, req.ContentLength = http.NoBody, 0
				}
				req.Header.Set("User-Agent", "counters-test")
				resp, err := client.Do(req)
				if err != nil {
					t.Fatalf("%s %s: %v", method, path, err)
				}
				b, err := io.ReadAll(resp.Body)
				resp.Body.Close()
				if err != nil {
					t.Fatal(err)
				}
				if tc.h2 != (resp.ProtoMajor == 2) {
					t.Fatalf("%s %s: answered over %s", method, path, resp.Proto)
				}
				if resp.StatusCode != code {
					t.Fatalf("%s %s: status %d %q, want %d", method, path, resp.StatusCode, b, code)
				}
				classes[code/100-1]++
				if tc.h2 {
					h2In += int64(len(":method")+len(method)+len(":path")+len(path)+len(":scheme")+len("https")+
						len(":authority")+len(req.URL.Host)+4*4) + h2Size(req.Header) + int64(len(body))
					if body != "" {
						h2In += int64(len("content-length") + len(strconv.Itoa(len(body))) + 4)
					}
					h2Out += int64(len(":status")+3+4) + h2Size(resp.Header) + int64(len(b))
				}
			}
			client.CloseIdleConnections()

			var rsStatus []status.RS
			var st status.VS
			testkit.EventuallyState(t, 10*time.Second, func() (bool, string) {
				st = e.Status()[0]
				if st.L7 == nil {
					return false, "no L7 status"
				}
				rsStatus = st.RealServers
				for _, sub := range st.L7.SubVSs {
					rsStatus = append(rsStatus, sub.RealServers...)
				}
				var rsIn, rsOut, webIn, webOut int64
				for _, rs := range rsStatus {
					rsIn, rsOut = rsIn+rs.BytesIn, rsOut+rs.BytesOut
				}
				for _, w := range webs {
					webIn, webOut = webIn+w.bytes.read.Load(), webOut+w.bytes.written.Load()
				}
				wantIn, wantOut := cb.written.Load(), cb.read.Load()
				if tc.h2 {
					wantIn, wantOut = h2In, h2Out
				}
				ok := st.L7.HTTP.Requests == n && st.BytesIn == wantIn && st.BytesOut == wantOut && rsOut == webOut &&
					(tc.mute || rsIn == webIn) && len(rec.Entries()) == n
				return ok, fmt.Sprintf("requests %d; VS bytes in %d out %d, client %d %d; RS bytes in %d out %d, servers %d %d; %d log entries",
					st.L7.HTTP.Requests, st.BytesIn, st.BytesOut, wantIn, wantOut, rsIn, rsOut, webIn, webOut, len(rec.Entries()))
			}, "the counters to match the clients' and servers'")

			h := st.L7.HTTP
			t.Logf("%d requests: VS bytes in %d out %d, retries %d, classes %v", h.Requests, st.BytesIn, st.BytesOut, h.Retries, classes)
			if got := [6]int64{h.Responses.C1xx, h.Responses.C2xx, h.Responses.C3xx, h.Responses.C4xx, h.Responses.C5xx, h.Responses.Other}; got != classes {
				t.Errorf("responses by class %v, the clients got %v", got, classes)
			}
			if h.Duration.Count != n || h.TTFB.Count != n || len(h.Duration.Counts) != len(status.DurationBounds) {
				t.Errorf("histograms: duration count %d, ttfb count %d, %d buckets; want %d, %d, %d",
					h.Duration.Count, h.TTFB.Count, len(h.Duration.Counts), n, n, len(status.DurationBounds))
			}
			if h.ProxyErrors != 0 || h.Aborted != 0 {
				t.Errorf("proxy errors %d, aborted %d, want none", h.ProxyErrors, h.Aborted)
			}
			// Per real server: the requests each received, and its answers.
			var rsClasses [6]int64
			for _, rs := range rsStatus {
				r := rs.Responses
				for i, v := range []int64{r.C1xx, r.C2xx, r.C3xx, r.C4xx, r.C5xx, r.Other} {
					rsClasses[i] += v
				}
				want := int64(-1)
				for _, w := range webs {
					if rs.Port == w.port {
						want = w.requests.Load()
					}
				}
				if rs.Port == mutePort {
					want = muteReqs.Load()
				}
				if rs.Requests != want {
					t.Errorf("real server %d: %d requests, it received %d", rs.ID, rs.Requests, want)
				}
				if rs.Port != mutePort && rs.Requests > 0 && rs.ResponseTime <= 0 {
					t.Errorf("real server %d: no response time", rs.ID)
				}
			}
			if rsClasses != classes {
				t.Errorf("real servers' responses by class %v, the clients got %v", rsClasses, classes)
			}
			if tc.mute {
				if m := muteReqs.Load(); m == 0 || h.Retries != m {
					t.Errorf("retries %d, the failing server received %d requests (want > 0 and equal)", h.Retries, m)
				}
			} else if h.Retries != 0 {
				t.Errorf("retries %d, want 0", h.Retries)
			}
			if tc.subVS {
				s0, s1 := st.L7.SubVSs[0].HTTP, st.L7.SubVSs[1].HTTP
				if s0.Requests != int64(subA) || s1.Requests != int64(n-subA) || s0.Duration.Count != uint64(subA) {
					t.Errorf("SubVS requests %d and %d (duration count %d), want %d and %d", s0.Requests, s1.Requests, s0.Duration.Count, subA, n-subA)
				}
			}
			// The access log has every request, with its bytes.
			var logIn, logOut int64
			for _, en := range rec.Entries() {
				logIn, logOut = logIn+en.BytesIn, logOut+en.BytesOut
				if en.Kind != accesslog.KindHTTP || en.VS != 1 || en.Status == 0 || en.Server == "" || en.ServerID == 0 ||
					en.Method == "" || en.UserAgent != "counters-test" || en.Duration <= 0 || en.TTFB < 0 ||
					en.Frontend.Port() != uint16(port) || !en.Client.IsValid() {
					t.Fatalf("access log entry %+v", en)
				}
				if tc.tls != (en.SNI == "www.example.test") {
					t.Fatalf("access log entry SNI %q", en.SNI)
				}
				if tc.subVS && (en.SubVS == 0 || en.SubVSName == "") || !tc.subVS && en.SubVS != 0 {
					t.Fatalf("access log entry SubVS %d %q", en.SubVS, en.SubVSName)
				}
				if tc.subVS && en.SubVS == 3 && en.SubVSName != "rest" {
					t.Fatalf("access log entry SubVS name %q, want rest", en.SubVSName)
				}
				if wantProto := map[bool]string{false: "HTTP/1.1", true: "HTTP/2.0"}[tc.h2]; en.Proto != wantProto {
					t.Fatalf("access log entry proto %q, want %q", en.Proto, wantProto)
				}
			}
			if logIn != st.BytesIn || logOut != st.BytesOut {
				t.Errorf("access log bytes in %d out %d, status %d %d", logIn, logOut, st.BytesIn, st.BytesOut)
			}
		})
	}
}

// TestL7CountersProxyErrors checks Fulcrum's own answers: every real
// server down gives 503s counted as proxy errors and 5xx, with no TTFB.
func TestL7CountersProxyErrors(t *testing.T) {
	e := newEngine(t)
	dead := testkit.FreePort(t, "127.0.0.1") // nothing listens there
	port := testkit.FreePort(t, "127.0.0.9")
	vs := httpVS(1, "127.0.0.9", port, config.RealServer{ID: 11, Address: "127.0.0.1", Port: dead, Weight: 1})
	vs.HealthCheck = config.HealthCheck{Type: "none"}
	mustApply(t, e, conf(t, vs))
	c := newClient(nil, true)
	t.Cleanup(c.CloseIdleConnections)
	const n = 10
	for range n {
		resp, err := c.Get("http://" + hostPort("127.0.0.9", port) + "/")
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode < 500 {
			t.Fatalf("status %d, want Fulcrum's error answer", resp.StatusCode)
		}
	}
	var h status.HTTP
	testkit.Eventually(t, 5*time.Second, func() bool {
		h = e.Status()[0].L7.HTTP
		return h.Requests == n
	}, "the requests to be counted")
	if h.ProxyErrors != n || h.Responses.C5xx != n || h.TTFB.Count != 0 || h.Duration.Count != n {
		t.Errorf("counters %+v, want %d proxy errors and 5xx, no TTFB", h, n)
	}
	if rs := e.Status()[0].RealServers[0]; rs.Requests != 0 || rs.Failures == 0 {
		t.Errorf("real server: %d requests, %d failures; want none sent, failures counted", rs.Requests, rs.Failures)
	}
}

// TestCheckFailuresInStatus: the failed health checks of a real server
// nobody listens on are counted in its status.
func TestCheckFailuresInStatus(t *testing.T) {
	e := New(Options{Logger: quiet, Health: health.Options{Logger: quiet, Unit: 50 * time.Millisecond}})
	t.Cleanup(func() { e.Close() })
	dead := testkit.FreePort(t, "127.0.0.1")
	port := testkit.FreePort(t, "127.0.0.9")
	vs := httpVS(1, "127.0.0.9", port, config.RealServer{ID: 11, Address: "127.0.0.1", Port: dead, Weight: 1})
	vs.HealthCheck = config.HealthCheck{Type: "tcp"} // every 9 units of 50 ms
	mustApply(t, e, conf(t, vs))
	testkit.EventuallyState(t, 15*time.Second, func() (bool, string) {
		rs := e.Status()[0].RealServers[0]
		return rs.CheckFailures >= 2, fmt.Sprintf("%d check failures, status %s", rs.CheckFailures, rs.Status)
	}, "two failed checks to be counted")
}

// TestL7CountersSurviveReload: a changed service (and SubVS) keeps its
// request counters, and an unchanged real server its own.
func TestL7CountersSurviveReload(t *testing.T) {
	e := newEngine(t)
	web := startCountedWeb(t, "a")
	port := testkit.FreePort(t, "127.0.0.9")
	none := config.HealthCheck{Type: "none"}
	vs := httpVS(1, "127.0.0.9", port)
	vs.HealthCheck = none
	vs.SubVSs = []config.VirtualService{{ID: 2, Type: "http", HealthCheck: none,
		RealServers: []config.RealServer{{ID: 21, Address: "127.0.0.1", Port: web.port, Weight: 1}}}}
	mustApply(t, e, conf(t, vs))
	c := newClient(nil, true)
	t.Cleanup(c.CloseIdleConnections)
	send := func(n int) {
		for range n {
			get(t, c, "http://"+hostPort("127.0.0.9", port)+"/", "")
		}
	}
	send(5)
	vs.Idletime = 120 // a change of the service: compiled anew
	mustApply(t, e, conf(t, vs))
	send(5)
	testkit.EventuallyState(t, 5*time.Second, func() (bool, string) {
		l := e.Status()[0].L7
		sub := l.SubVSs[0]
		return l.HTTP.Requests == 10 && sub.HTTP.Requests == 10 && sub.RealServers[0].Requests == 10,
			fmt.Sprintf("service %d, SubVS %d, real server %d requests", l.HTTP.Requests, sub.HTTP.Requests, sub.RealServers[0].Requests)
	}, "the counters to go on across the reload")
}

// TestAccessLogNotApplied: a service asking for an access log from a
// Fulcrum that writes none says so in its status.
func TestAccessLogNotApplied(t *testing.T) {
	e := newEngine(t) // no access logger
	web := startCountedWeb(t, "a")
	port := testkit.FreePort(t, "127.0.0.9")
	vs := httpVS(1, "127.0.0.9", port, config.RealServer{ID: 11, Address: "127.0.0.1", Port: web.port, Weight: 1})
	vs.HealthCheck, vs.AccessLog = config.HealthCheck{Type: "none"}, true
	mustApply(t, e, conf(t, vs))
	if r := e.Status()[0].Reason; !strings.Contains(r, "not applied: accessLog") {
		t.Errorf("reason %q, want the access log not applied", r)
	}
	vs.AccessLog = false
	mustApply(t, e, conf(t, vs))
	if r := e.Status()[0].Reason; strings.Contains(r, "accessLog") {
		t.Errorf("reason %q without accessLog", r)
	}
}
