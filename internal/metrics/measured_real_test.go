package metrics

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/dataplane"
	"github.com/fulcrum-lb/fulcrum/internal/health"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// plane is a real data plane with its configuration and an exporter of
// it with HAProxy's names on.
type plane struct {
	e   *dataplane.Engine
	cfg *config.Config
	exp *Exporter
}

// newPlane starts a data plane whose health checks run with a unit of
// unit per configured second (0: a second).
func newPlane(t testing.TB, unit time.Duration) *plane {
	t.Helper()
	return newPlaneLog(t, unit, nil)
}

// newPlaneLog is newPlane with an access logger.
func newPlaneLog(t testing.TB, unit time.Duration, log accesslog.Logger) *plane {
	t.Helper()
	e := dataplane.New(dataplane.Options{Logger: quiet, Health: health.Options{Logger: quiet, Unit: unit}, AccessLog: log})
	t.Cleanup(func() { _ = e.Close() })
	p := &plane{e: e}
	exp, err := New(Options{Source: e, Config: func() *config.Config { return p.cfg }, Version: "test", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	p.exp = exp
	return p
}

// apply makes vss (with edit applied to the options) the configuration,
// with haproxyNames on.
func (p *plane) apply(t testing.TB, edit func(*config.Config), vss ...config.VirtualService) {
	t.Helper()
	c := config.Default()
	c.Options.Metrics.HAProxyNames = true
	c.VirtualServices = vss
	if edit != nil {
		edit(c)
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	if err := p.e.Apply(c); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	p.cfg = c
}

// scrape fetches /metrics over a real socket and parses it.
func (p *plane) scrape(t testing.TB) map[string]*familyData {
	t.Helper()
	srv := httptest.NewServer(p.exp.Handler())
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v\n%.500s", resp.StatusCode, err, b)
	}
	return parse(t, b)
}

// metric returns the sum of the series of name whose labels include
// want; a family missing from the scrape fails the test.
func metric(t testing.TB, fams map[string]*familyData, name string, want map[string]string) float64 {
	t.Helper()
	v, ok := sum(fams, name, want)
	if !ok {
		t.Fatalf("%s not in the scrape", name)
	}
	return v
}

// restartable is a real HTTP server on a fixed address that can be
// stopped and started again.
type restartable struct {
	t    *testing.T
	addr string
	srv  *testkit.HTTPServer
}

func startRestartable(t *testing.T) *restartable {
	r := &restartable{t: t, addr: testkit.FreeAddr(t, "127.0.0.1")}
	r.start()
	return r
}

func (r *restartable) start() {
	r.srv = testkit.ServeHTTP(r.t, testkit.ListenAt(r.t, r.addr), http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprint(w, "ok")
	}), nil)
}

func (r *restartable) stop() { r.srv.Close() }

func (r *restartable) port() int { return r.srv.Port() }

// TestUpDownMeasured stops a real server so that its health check fails,
// starts it again and stops it again: its count of changes to Down is 2,
// as are its services' (a service with only that server, and a SubVS
// with only that server); the first status (Down while the server was
// still unchecked) is not counted; the counts survive a reload that keeps
// the server; the HAProxy families show them.
func TestUpDownMeasured(t *testing.T) {
	p := newPlane(t, 50*time.Millisecond) // a tcp check every 9 × 50 ms
	srv := startRestartable(t)
	check := config.HealthCheck{Type: "tcp"}
	rs := func(id int) config.RealServer {
		return config.RealServer{ID: id, Address: "127.0.0.1", Port: srv.port(), Weight: 1}
	}
	webPort, subPort := testkit.FreePort(t, "127.0.0.1"), testkit.FreePort(t, "127.0.0.1")
	web := config.VirtualService{ID: 1, NickName: "web", Address: "127.0.0.1", Port: webPort, Protocol: "tcp", Type: "http",
		HealthCheck: check, RealServers: []config.RealServer{rs(2)}}
	parent := config.VirtualService{ID: 3, NickName: "parent", Address: "127.0.0.1", Port: subPort, Protocol: "tcp", Type: "http",
		HealthCheck: check, SubVSs: []config.VirtualService{{ID: 4, NickName: "sub", Type: "http", HealthCheck: check,
			RealServers: []config.RealServer{rs(5)}}}}
	p.apply(t, nil, web, parent)

	type counts struct{ rs, vs, sub, subRS int64 }
	read := func() (counts, string) {
		st := p.e.Status()
		if len(st) != 2 || st[1].L7 == nil || len(st[1].L7.SubVSs) != 1 {
			return counts{}, "status incomplete"
		}
		sub := st[1].L7.SubVSs[0]
		c := counts{rs: st[0].RealServers[0].UpDown, vs: st[0].UpDown, sub: sub.UpDown, subRS: sub.RealServers[0].UpDown}
		return c, fmt.Sprintf("counts %+v; web %s/%s, rs %s; sub %s, rs %s", c, st[0].State, st[0].Health,
			st[0].RealServers[0].Status, sub.Health, sub.RealServers[0].Status)
	}
	waitRS := func(want string) {
		t.Helper()
		testkit.EventuallyState(t, 15*time.Second, func() (bool, string) {
			st := p.e.Status()
			_, s := read()
			return len(st) == 2 && string(st[0].RealServers[0].Status) == want && len(st[1].L7.SubVSs) == 1 &&
				string(st[1].L7.SubVSs[0].RealServers[0].Status) == want, s
		}, "the real server to be "+want)
	}
	waitRS("Up")
	if c, s := read(); c != (counts{}) {
		t.Fatalf("after the first status: %s, want all 0 (the first status is not counted)", s)
	}
	for i := 1; i <= 2; i++ {
		srv.stop()
		waitRS("Down")
		want := counts{rs: int64(i), vs: int64(i), sub: int64(i), subRS: int64(i)}
		testkit.EventuallyState(t, 10*time.Second, func() (bool, string) { c, s := read(); return c == want, s },
			fmt.Sprintf("change %d to Down to be counted", i))
		if i == 1 {
			srv.start()
			waitRS("Up")
		}
	}

	// A reload that changes the services but keeps the real server.
	web.Idletime, parent.Idletime = 120, 120
	p.apply(t, nil, web, parent)
	if c, s := read(); c != (counts{rs: 2, vs: 2, sub: 2, subRS: 2}) {
		t.Errorf("after a reload that kept the server: %s", s)
	}
	// The events agree: two changes of the server to Down per service.
	var downs int
	for _, ev := range p.e.Events(100, 0) {
		if ev.RS == 2 && ev.To == health.StatusDown && ev.From != "" {
			downs++
		}
	}
	if downs != 2 {
		t.Errorf("events: %d changes of real server 2 to Down, want 2", downs)
	}

	fams := p.scrape(t)
	if v := metric(t, fams, "haproxy_server_check_up_down_total", map[string]string{"proxy": "web"}); v != 2 {
		t.Errorf("haproxy_server_check_up_down_total{proxy=web} = %v, want 2", v)
	}
	if v := metric(t, fams, "haproxy_backend_check_up_down_total", map[string]string{"proxy": "web"}); v != 2 {
		t.Errorf("haproxy_backend_check_up_down_total{proxy=web} = %v, want 2", v)
	}
	var subSeen bool
	for _, s := range fams["haproxy_backend_check_up_down_total"].series {
		if strings.Contains(s.labels["proxy"], "sub") {
			subSeen = true
			if s.value != 2 {
				t.Errorf("haproxy_backend_check_up_down_total{proxy=%s} = %v, want 2", s.labels["proxy"], s.value)
			}
		}
	}
	if !subSeen {
		t.Errorf("no backend series of the SubVS in %v", fams["haproxy_backend_check_up_down_total"].series)
	}
}
