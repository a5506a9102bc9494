package dataplane

import (
	"bufio"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// connWeb is a real HTTP server that counts the connections it accepted
// and answers every request with "<tag> <the proxy's address>".
type connWeb struct {
	port     int
	accepted atomic.Int64
}

func startConnWeb(t testing.TB, tag string) *connWeb {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	w := &connWeb{port: ln.Addr().(*net.TCPAddr).Port}
	srv := &http.Server{
		Handler: http.HandlerFunc(func(rw http.ResponseWriter, r *http.Request) {
			_, _ = io.Copy(io.Discard, r.Body)
			fmt.Fprintf(rw, "%s %s", tag, r.RemoteAddr)
		}),
		ConnState: func(_ net.Conn, s http.ConnState) {
			if s == http.StateNew {
				w.accepted.Add(1)
			}
		},
		ReadHeaderTimeout: 10 * time.Second,
	}
	var wg sync.WaitGroup
	wg.Go(func() { _ = srv.Serve(ln) })
	t.Cleanup(func() {
		_ = srv.Close()
		wg.Wait()
	})
	return w
}

func (w *connWeb) rs(id int) config.RealServer {
	return config.RealServer{ID: id, Address: "127.0.0.1", Port: w.port, Weight: 1}
}

// keptGet sends a keep-alive GET for host on c and returns the body.
func keptGet(c net.Conn, r *bufio.Reader, host string) (string, error) {
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return "", err
	}
	if resp.StatusCode != 200 || resp.Close {
		return "", fmt.Errorf("status %s, close %v", resp.Status, resp.Close)
	}
	return string(b), nil
}

// l7Reuse is the layer-7 service of the reuse tests: TLS offload with
// certificate "site", SubVS 2 chosen by content rule "www" (with source
// persistence) and SubVS 3 for the rest, plus an unrelated layer-4
// service when other is set.
type l7Reuse struct {
	p, alt   *pki // alt: another leaf for "site"
	www, def *connWeb
	tag      *tagServer
	ports    []int
}

func newL7Reuse(t *testing.T) *l7Reuse {
	return &l7Reuse{p: newTestPKI(t), alt: newTestPKI(t), www: startConnWeb(t, "www"), def: startConnWeb(t, "def"),
		tag: startTag(t, "l4"), ports: testkit.FreePorts(t, "127.0.0.7", 2)}
}

func (f *l7Reuse) conf(t *testing.T, other bool, edit func(*config.Config)) *config.Config {
	vs := httpVS(1, "127.0.0.7", f.ports[0])
	vs.TLS = config.TLS{Offload: true, Certificates: []string{"site"}}
	none := config.HealthCheck{Type: "none"} // only the proxy connects to the real servers
	vs.HealthCheck = none
	vs.SubVSs = []config.VirtualService{
		{ID: 2, Type: "http", HTTP: &config.HTTPSettings{SelectRules: []string{"www"}}, HealthCheck: none,
			Persistence: config.Persistence{Mode: "src", Timeout: 600}, RealServers: []config.RealServer{f.www.rs(21)}},
		{ID: 3, Type: "http", HealthCheck: none, RealServers: []config.RealServer{f.def.rs(31)}},
	}
	vss := []config.VirtualService{vs}
	if other {
		vss = append(vss, vsOf(4, "127.0.0.7", f.ports[1], rsOf(41, f.tag, 1)))
	}
	return confWith(t, func(c *config.Config) {
		c.Certificates = []config.Certificate{
			{Name: "site", CertPEM: f.p.leafPEM, KeyPEM: f.p.keyPEM},
			{Name: "inter", Intermediate: true, CertPEM: f.p.interPEM},
		}
		c.ContentRules = []config.ContentRule{{Name: "www", Type: "match", Match: "host", MatchType: "prefix", Pattern: "www."}}
		if edit != nil {
			edit(c)
		}
	}, vss...)
}

// dial opens a TLS keep-alive connection to the layer-7 service.
func (f *l7Reuse) dial(t *testing.T) (net.Conn, *bufio.Reader) {
	t.Helper()
	c, err := tls.Dial("tcp", hostPort("127.0.0.7", f.ports[0]), &tls.Config{RootCAs: f.p.roots, ServerName: "www.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	return c, bufio.NewReader(c)
}

// l7Parts are the compiled parts of a layer-7 service that reuse keeps.
type l7Parts struct {
	svc          any
	pool0, pool1 any // the l7 routing of the SubVSs
	pickers      []any
	tables       []any
}

func partsOf(s *service) l7Parts {
	cfg := s.l7.Config()
	p := l7Parts{svc: s.l7, pool0: cfg.SubVSs[0].Pool, pool1: cfg.SubVSs[1].Pool}
	for _, sub := range s.subs {
		p.pickers = append(p.pickers, sub.picker)
		p.tables = append(p.tables, sub.table)
	}
	return p
}

func (p l7Parts) same(q l7Parts) bool {
	if p.svc != q.svc || p.pool0 != q.pool0 || p.pool1 != q.pool1 || len(p.pickers) != len(q.pickers) {
		return false
	}
	for i := range p.pickers {
		if p.pickers[i] != q.pickers[i] || p.tables[i] != q.tables[i] {
			return false
		}
	}
	return true
}

// TestLayer7ReuseAcrossUnrelatedChange checks that a layer-7 service
// whose configuration, certificates and content rules did not change
// keeps its compiled state (Service, SubVS routing, pickers, persistence
// tables) across an Apply that adds an unrelated service, certificate
// and content rule, and that a client's keep-alive connection carries on
// over the same connection to the real server.
func TestLayer7ReuseAcrossUnrelatedChange(t *testing.T) {
	f := newL7Reuse(t)
	e := newEngine(t)
	mustApply(t, e, f.conf(t, false, nil))
	before := compiledService(t, e, 1)
	parts := partsOf(before)
	if before.table != nil || parts.tables[0] == nil {
		t.Fatal("SubVS 2 has no persistence table")
	}

	c, r := f.dial(t)
	first, err := keptGet(c, r, "www.example.test")
	if err != nil || !strings.HasPrefix(first, "www ") {
		t.Fatalf("first request: %q, %v", first, err)
	}

	mustApply(t, e, f.conf(t, true, func(c *config.Config) {
		c.Certificates = append(c.Certificates, config.Certificate{Name: "other", CertPEM: f.p.leafPEM, KeyPEM: f.p.keyPEM})
		c.ContentRules = append(c.ContentRules, config.ContentRule{Name: "other", Type: "match", Match: "url", Pattern: "^/x"})
	}))
	after := compiledService(t, e, 1)
	if !after.reused {
		t.Error("the unchanged layer-7 service was recompiled")
	}
	if !partsOf(after).same(parts) {
		t.Errorf("the unchanged layer-7 service lost compiled state: %+v, was %+v", partsOf(after), parts)
	}
	if after.subs[0].vs != &e.Snapshot().cfg.VirtualServices[0].SubVSs[0] {
		t.Error("the kept SubVS does not refer to the configuration in force")
	}

	for i := range 3 {
		got, err := keptGet(c, r, "www.example.test")
		if err != nil {
			t.Fatalf("request %d on the kept connection after the Apply: %v", i, err)
		}
		if got != first {
			t.Errorf("request %d: %q, first %q: not the same connection to the real server", i, got, first)
		}
	}
	if n := f.www.accepted.Load(); n != 1 {
		t.Errorf("the real server accepted %d connections, want 1", n)
	}
	if _, err := askOnce(hostPort("127.0.0.7", f.ports[1])); err != nil {
		t.Errorf("the added service: %v", err)
	}
	st := e.Status()
	if len(st) != 2 || st[0].L7 == nil || st[0].L7.SubVSs[0].Requests != 4 || st[0].Persistence != nil {
		t.Fatalf("status after the Apply: %+v", st[0])
	}
}

// TestLayer7ChangeNotReused checks that a change to a layer-7 service, or
// to a certificate or content rule it refers to, or to the global
// options, recompiles it (its Service is updated in place, so a
// keep-alive client connection still carries on).
func TestLayer7ChangeNotReused(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(f *l7Reuse, c *config.Config)
	}{
		{"real server weight", func(_ *l7Reuse, c *config.Config) { c.VirtualServices[0].SubVSs[0].RealServers[0].Weight = 7 }},
		{"certificate", func(f *l7Reuse, c *config.Config) {
			c.Certificates[0].CertPEM, c.Certificates[0].KeyPEM = f.alt.leafPEM, f.alt.keyPEM
		}},
		{"intermediate", func(f *l7Reuse, c *config.Config) {
			c.Certificates = append(c.Certificates, config.Certificate{Name: "inter2", Intermediate: true, CertPEM: f.alt.interPEM})
		}},
		{"content rule", func(_ *l7Reuse, c *config.Config) { c.ContentRules[0].Pattern = "www.example." }},
		{"options", func(_ *l7Reuse, c *config.Config) { c.Options.ConnTimeout = 300 }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newL7Reuse(t)
			e := newEngine(t)
			mustApply(t, e, f.conf(t, false, nil))
			parts := partsOf(compiledService(t, e, 1))
			c, r := f.dial(t)
			if _, err := keptGet(c, r, "www.example.test"); err != nil {
				t.Fatal(err)
			}

			mustApply(t, e, f.conf(t, true, func(c *config.Config) { tc.edit(f, c) }))
			after := compiledService(t, e, 1)
			got := partsOf(after)
			if after.reused || got.pool0 == parts.pool0 || got.pickers[0] == parts.pickers[0] {
				t.Errorf("the changed layer-7 service was reused")
			}
			if got.svc != parts.svc || got.tables[0] != parts.tables[0] {
				t.Error("the changed layer-7 service lost its Service or its persistence table")
			}
			if _, err := keptGet(c, r, "www.example.test"); err != nil {
				t.Fatalf("kept connection after the change: %v", err)
			}
		})
	}
}
