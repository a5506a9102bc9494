package metrics

import (
	"bytes"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"sort"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
	"go.uber.org/goleak"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/dataplane"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

var update = flag.Bool("update", false, "rewrite testdata and the generated part of docs/observability.md")

var quiet = slog.New(slog.DiscardHandler)

// need returns the path of a Debian program the test needs; missing, it
// fails the test under CI=true and skips it otherwise.
func need(t testing.TB, prog, pkg string) string {
	t.Helper()
	p, err := exec.LookPath(prog)
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("%s not found (Debian package %s): %v", prog, pkg, err)
		}
		t.Skipf("%s not found (Debian package %s)", prog, pkg)
	}
	return p
}

// rig is a real data plane with an HTTP service "web" (two real HTTP
// servers), a layer-4 TCP service without a nickname and the exporter.
type rig struct {
	engine *dataplane.Engine
	cfg    *config.Config
	exp    *Exporter
	webURL string
	tcp    string
}

func newRig(t testing.TB, haproxy bool) *rig {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		if r.URL.Path == "/missing" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprint(w, "hello")
	})
	b1, b2 := testkit.StartHTTP(t, "127.0.0.1", h), testkit.StartHTTP(t, "127.0.0.1", h)
	echo := testkit.StartTCPEcho(t, "127.0.0.1")
	webPort, tcpPort := testkit.FreePort(t, "127.0.0.1"), testkit.FreePort(t, "127.0.0.1")
	c := config.Default()
	c.Options.Metrics.HAProxyNames = haproxy
	c.VirtualServices = []config.VirtualService{
		{ID: 1, NickName: "web", Address: "127.0.0.1", Port: webPort, Protocol: "tcp", Type: "http",
			Limits: config.Limits{ConnsPerSec: 5000},
			RealServers: []config.RealServer{
				{ID: 2, Address: "127.0.0.1", Port: b1.Port(), Weight: 2, Limit: 100},
				{ID: 3, Address: "127.0.0.1", Port: b2.Port(), Weight: 1},
			}},
		{ID: 4, Address: "127.0.0.1", Port: tcpPort, Protocol: "tcp",
			RealServers: []config.RealServer{{ID: 5, Address: "127.0.0.1", Port: echo.Port()}}},
	}
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("test configuration: %v", err)
	}
	e := dataplane.New(dataplane.Options{Logger: quiet})
	t.Cleanup(func() { _ = e.Close() })
	if err := e.Apply(c); err != nil {
		t.Fatalf("Apply: %v", err)
	}
	exp, err := New(Options{Source: e, Config: func() *config.Config { return c }, Version: "test", Commit: "abc", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	return &rig{engine: e, cfg: c, exp: exp, webURL: "http://" + net.JoinHostPort("127.0.0.1", strconv.Itoa(webPort)),
		tcp: net.JoinHostPort("127.0.0.1", strconv.Itoa(tcpPort))}
}

// traffic sends n HTTP requests (every fifth to a missing page) and one
// TCP round trip.
func (r *rig) traffic(t testing.TB, n int) {
	t.Helper()
	tr := &http.Transport{}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 10 * time.Second}
	for i := range n {
		path := "/"
		if i%5 == 4 {
			path = "/missing"
		}
		resp, err := c.Get(r.webURL + path)
		if err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	conn, err := net.DialTimeout("tcp", r.tcp, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := conn.Write([]byte("ping\n")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 5)
	if _, err := io.ReadFull(conn, buf); err != nil {
		t.Fatalf("echo through the TCP service: %v", err)
	}
}

// scrape fetches /metrics over a real socket and returns the body.
func (r *rig) scrape(t testing.TB) []byte {
	t.Helper()
	srv := httptest.NewServer(r.exp.Handler())
	defer srv.Close()
	req, _ := http.NewRequest("GET", srv.URL+"/metrics", nil)
	req.Header.Set("Accept", "text/plain")
	resp, err := srv.Client().Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("scrape: %d %v\n%s", resp.StatusCode, err, b)
	}
	return b
}

func parse(t testing.TB, b []byte) map[string]*familyData {
	t.Helper()
	p := expfmt.NewTextParser(model.UTF8Validation)
	mfs, err := p.TextToMetricFamilies(bytes.NewReader(b))
	if err != nil {
		t.Fatalf("parse the exposition: %v", err)
	}
	out := map[string]*familyData{}
	for name, mf := range mfs {
		fd := &familyData{typ: strings.ToLower(mf.GetType().String()), labels: map[string]bool{}}
		for _, m := range mf.Metric {
			s := map[string]string{}
			for _, l := range m.Label {
				fd.labels[l.GetName()] = true
				s[l.GetName()] = l.GetValue()
			}
			v := m.GetCounter().GetValue() + m.GetGauge().GetValue() + float64(m.GetHistogram().GetSampleCount())
			fd.series = append(fd.series, series{labels: s, value: v})
		}
		out[name] = fd
	}
	return out
}

type series struct {
	labels map[string]string
	value  float64
}

type familyData struct {
	typ    string
	labels map[string]bool
	series []series
}

// value returns the value of the series of name whose labels include
// want, and whether there is one.
func value(fams map[string]*familyData, name string, want map[string]string) (float64, bool) {
	fd := fams[name]
	if fd == nil {
		return 0, false
	}
next:
	for _, s := range fd.series {
		for k, v := range want {
			if s.labels[k] != v {
				continue next
			}
		}
		return s.value, true
	}
	return 0, false
}

func TestScrapeCountsTraffic(t *testing.T) {
	r := newRig(t, true)
	r.traffic(t, 20)
	// Byte counters of connections are settled when they close; wait for
	// the connection counters the data plane keeps.
	testkit.Eventually(t, 10*time.Second, func() bool {
		v, _ := value(parse(t, r.scrape(t)), "fulcrum_vs_connections_total", map[string]string{"vs_name": "web"})
		return v >= 1
	}, "the HTTP service's connections to show in the scrape")
	fams := parse(t, r.scrape(t))
	checks := []struct {
		name string
		want map[string]string
		min  float64
	}{
		{"fulcrum_vs_up", map[string]string{"vs": "1", "vs_name": "web"}, 1},
		{"fulcrum_vs_connections_total", map[string]string{"vs": "4", "vs_name": r.tcp, "vs_address": r.tcp + "/tcp"}, 1},
		{"fulcrum_rs_connections_total", map[string]string{"vs": "4", "rs": "5", "subvs": ""}, 1},
		{"fulcrum_rs_weight", map[string]string{"vs": "1", "rs": "2"}, 2},
		{"fulcrum_vs_limit_hits_total", map[string]string{"vs": "1", "limit": "connsPerSec"}, 0},
		{"fulcrum_vs_request_duration_seconds", map[string]string{"vs": "1"}, 0},
		{"fulcrum_build_info", map[string]string{"version": "test", "commit": "abc"}, 1},
		{"fulcrum_connections_limit", nil, 1},
		{"haproxy_frontend_sessions_total", map[string]string{"proxy": "web"}, 1},
		{"haproxy_frontend_limit_session_rate", map[string]string{"proxy": "web"}, 5000},
		{"haproxy_server_limit_sessions", map[string]string{"proxy": "web", "server": r.cfgRS(2)}, 100},
		{"haproxy_server_weight", map[string]string{"proxy": "web", "server": r.cfgRS(3)}, 1},
		{"haproxy_frontend_status", map[string]string{"proxy": "web", "state": "UP"}, 1},
		{"haproxy_backend_uweight", map[string]string{"proxy": "web"}, 3},
		{"haproxy_frontend_http_responses_total", map[string]string{"proxy": "web", "code": "4xx"}, 0},
	}
	for _, c := range checks {
		v, ok := value(fams, c.name, c.want)
		if !ok || v < c.min {
			t.Errorf("%s%v = %v (present %v), want at least %v", c.name, c.want, v, ok, c.min)
		}
	}
	// The layer-4 service has no HTTP families.
	if _, ok := value(fams, "fulcrum_vs_requests_total", map[string]string{"vs": "4"}); ok {
		t.Error("fulcrum_vs_requests_total for a layer-4 service")
	}
	// The status-class counters are filled by the data plane (issue 19,
	// item 1); once it does, requests and responses must match the
	// clients' count exactly.
	if req, _ := value(fams, "fulcrum_vs_requests_total", map[string]string{"vs": "1"}); req != 0 {
		if req != 20 {
			t.Errorf("fulcrum_vs_requests_total = %v, want 20", req)
		}
		if v, _ := value(fams, "fulcrum_vs_responses_total", map[string]string{"vs": "1", "code": "4xx"}); v != 4 {
			t.Errorf("4xx responses = %v, want 4", v)
		}
	}
}

func (r *rig) cfgRS(id int) string {
	for _, v := range r.cfg.VirtualServices {
		for _, rs := range v.RealServers {
			if rs.ID == id {
				return net.JoinHostPort(rs.Address, strconv.Itoa(rs.Port))
			}
		}
	}
	return ""
}

func TestHAProxyNamesOff(t *testing.T) {
	r := newRig(t, false)
	fams := parse(t, r.scrape(t))
	for name := range fams {
		if strings.HasPrefix(name, "haproxy_") {
			t.Errorf("%s exposed with haproxyNames off", name)
		}
	}
	if _, ok := fams["fulcrum_vs_up"]; !ok {
		t.Error("no fulcrum_vs_up")
	}
	if _, ok := fams["go_goroutines"]; !ok {
		t.Error("no Go runtime collector")
	}
	if _, ok := fams["process_open_fds"]; !ok {
		t.Error("no process collector")
	}
}

// TestPromtoolCheckMetrics runs Debian's promtool over a real scrape with
// both naming schemes.
func TestPromtoolCheckMetrics(t *testing.T) {
	promtool := need(t, "promtool", "prometheus")
	r := newRig(t, true)
	r.traffic(t, 10)
	body := r.scrape(t)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, promtool, "check", "metrics")
	cmd.Stdin = bytes.NewReader(body)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("promtool check metrics: %v\n%s", err, out)
	}
	if len(bytes.TrimSpace(out)) > 0 {
		t.Logf("promtool: %s", out)
	}
}

func TestExtraCollectors(t *testing.T) {
	e := dataplane.New(dataplane.Options{Logger: quiet})
	defer e.Close()
	if _, err := New(Options{}); err == nil {
		t.Error("New without a source succeeded")
	}
	dropped := 0.0
	extra := prometheus.NewCounterFunc(prometheus.CounterOpts{Name: "fulcrum_test_extra_total", Help: "test"},
		func() float64 { dropped++; return dropped })
	exp, err := New(Options{Source: e, Extra: []prometheus.Collector{extra}, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	fams := parse(t, (&rig{exp: exp}).scrape(t))
	if v, ok := value(fams, "fulcrum_test_extra_total", nil); !ok || v != 1 {
		t.Errorf("extra counter: %v %v", v, ok)
	}
	clash := prometheus.NewGaugeFunc(prometheus.GaugeOpts{Name: "fulcrum_connections", Help: "clash"}, func() float64 { return 0 })
	if _, err := New(Options{Source: e, Extra: []prometheus.Collector{clash}}); err == nil {
		t.Error("an extra collector with a clashing name was accepted")
	}
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func TestPipelineCounters(t *testing.T) {
	e := dataplane.New(dataplane.Options{Logger: quiet})
	defer e.Close()
	p := Pipeline{AccessLines: 7, AccessBytes: 700, AccessDropped: 2, AccessWriteErrors: 1,
		Syslog:    []SyslogHost{{Host: "tls://192.0.2.1:6514", Sent: 5, Dropped: 1, Queued: 3, Connected: true}},
		MailsSent: 4, MailsFailed: 1, Webhooks: []WebhookCounts{{Sent: 9, Failed: 2, Dropped: 0}}}
	exp, err := New(Options{Source: e, Pipeline: func() Pipeline { return p }, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	fams := parse(t, (&rig{exp: exp}).scrape(t))
	for _, tc := range []struct {
		name   string
		labels map[string]string
		want   float64
	}{
		{"fulcrum_accesslog_lines_total", nil, 7},
		{"fulcrum_accesslog_bytes_total", nil, 700},
		{"fulcrum_accesslog_dropped_total", nil, 2},
		{"fulcrum_accesslog_write_errors_total", nil, 1},
		{"fulcrum_syslog_messages_total", map[string]string{"host": "tls://192.0.2.1:6514"}, 5},
		{"fulcrum_syslog_dropped_total", map[string]string{"host": "tls://192.0.2.1:6514"}, 1},
		{"fulcrum_syslog_queued", map[string]string{"host": "tls://192.0.2.1:6514"}, 3},
		{"fulcrum_syslog_connected", map[string]string{"host": "tls://192.0.2.1:6514"}, 1},
		{"fulcrum_alert_mails_total", map[string]string{"result": "sent"}, 4},
		{"fulcrum_alert_mails_total", map[string]string{"result": "failed"}, 1},
		{"fulcrum_alert_webhook_events_total", map[string]string{"webhook": "1", "result": "sent"}, 9},
		{"fulcrum_alert_webhook_events_total", map[string]string{"webhook": "1", "result": "failed"}, 2},
	} {
		if v, ok := value(fams, tc.name, tc.labels); !ok || v != tc.want {
			t.Errorf("%s%v = %v (%v), want %v", tc.name, tc.labels, v, ok, tc.want)
		}
	}
}
