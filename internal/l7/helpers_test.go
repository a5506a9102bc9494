package l7

import (
	"bufio"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/certs"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/persist"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// testLogger discards logs unless FULCRUM_TEST_LOG is set.
func testLogger() *slog.Logger {
	if os.Getenv("FULCRUM_TEST_LOG") != "" {
		return slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelDebug}))
	}
	return slog.New(slog.NewTextHandler(io.Discard, nil))
}

// ---- PKI ----

// pemPair returns the certificate and key of c in PEM, as a configuration
// document holds them.
func pemPair(c *testkit.Cert) (certPEM, keyPEM string) { return c.CertPEM(), c.KeyPEM() }

// ---- real servers ----

// echoReply is what the echo real server answers, as JSON.
type echoReply struct {
	Server string      `json:"server"`
	Method string      `json:"method"`
	URI    string      `json:"uri"`
	Host   string      `json:"host"`
	Proto  string      `json:"proto"`
	Header http.Header `json:"header"`
	Body   string      `json:"body"`
	TLS    bool        `json:"tls"`
	SNI    string      `json:"sni"`
}

// realServer is a real HTTP(S) server started by a test on 127.0.0.x.
type realServer struct {
	name     string
	addr     string // host:port
	srv      *testkit.HTTPServer
	requests atomic.Int64
	conns    atomic.Int64
}

// startReal starts a real server named name on ip:port (port 0: any) that
// answers every request with an echoReply, unless handler is given.
// With tlsCert, it serves HTTPS.
func startReal(t testing.TB, name, ip string, port int, handler http.Handler, tlsCert *tls.Certificate) *realServer {
	t.Helper()
	var ln net.Listener
	if port == 0 {
		ln = testkit.Listen(t, ip)
	} else {
		ln = testkit.ListenAt(t, net.JoinHostPort(ip, strconv.Itoa(port)))
	}
	rs := &realServer{name: name, addr: ln.Addr().String()}
	if handler == nil {
		handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			body, _ := io.ReadAll(r.Body)
			rep := echoReply{Server: name, Method: r.Method, URI: r.RequestURI, Host: r.Host, Proto: r.Proto,
				Header: r.Header, Body: string(body), TLS: r.TLS != nil}
			if r.TLS != nil {
				rep.SNI = r.TLS.ServerName
			}
			w.Header().Set("Content-Type", "application/json")
			w.Header().Set("X-Server", name)
			_ = json.NewEncoder(w).Encode(rep)
		})
	}
	inner := handler
	counted := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rs.requests.Add(1)
		inner.ServeHTTP(w, r)
	})
	var cfg *tls.Config
	if tlsCert != nil {
		cfg = &tls.Config{Certificates: []tls.Certificate{*tlsCert}, NextProtos: []string{"http/1.1"}}
	}
	rs.srv = testkit.ServeHTTP(t, countingListener{ln, &rs.conns}, counted, cfg)
	return rs
}

// countingListener counts the connections it accepts.
type countingListener struct {
	net.Listener
	n *atomic.Int64
}

func (l countingListener) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if err == nil {
		l.n.Add(1)
	}
	return c, err
}

// stop closes the server and every connection it has.
func (rs *realServer) stop() { rs.srv.Close() }

func keyPair(t testing.TB, certPEM, keyPEM string) *tls.Certificate {
	c, err := tls.X509KeyPair([]byte(certPEM), []byte(keyPEM))
	if err != nil {
		t.Fatal(err)
	}
	return &c
}

// ---- the service under test ----

// fixture is an l7 service on a real listener.
type fixture struct {
	t     testing.TB
	proxy *Proxy
	svc   *Service
	ln    net.Listener
	addr  string
	cfg   *config.Config
	reg   *backend.Registry
	wg    sync.WaitGroup
	opts  balance.Options // of the pickers
}

// startVS decodes a configuration document holding one http service,
// builds it the way runtime does (real servers from a backend.Registry,
// pickers from balance) and serves it on its address (port 0: any free).
// %s placeholders in doc are not interpreted; callers format first.
func startVS(t testing.TB, doc string) *fixture {
	t.Helper()
	return startVSOpts(t, doc, balance.Options{})
}

// startVSOpts is startVS with pickers built with opts.
func startVSOpts(t testing.TB, doc string, opts balance.Options) *fixture {
	t.Helper()
	cfg, err := config.Decode([]byte(doc))
	if err != nil {
		t.Fatalf("decode: %v", err)
	}
	cfg.AssignIDs(nil)
	if err := cfg.Validate(); err != nil {
		t.Fatalf("validate: %v", err)
	}
	f := &fixture{t: t, cfg: cfg, reg: backend.NewRegistry(), opts: opts}
	vs := &cfg.VirtualServices[0]
	f.proxy = New(Options{Logger: testLogger(), DialTimeout: 2 * time.Second})
	svcCfg := f.build(vs)
	f.svc, err = f.proxy.Service(svcCfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", net.JoinHostPort(vs.Address, fmt.Sprint(vs.Port)))
	if err != nil {
		t.Fatalf("listen %s:%d: %v", vs.Address, vs.Port, err)
	}
	f.ln, f.addr = ln, ln.Addr().String()
	f.wg.Add(1)
	go func() {
		defer f.wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			f.svc.Handle(c)
		}
	}()
	t.Cleanup(f.close)
	return f
}

// build compiles vs as the data plane would.
func (f *fixture) build(vs *config.VirtualService) ServiceConfig {
	t := f.t
	store, err := certs.NewStore(f.cfg.Certificates)
	if err != nil {
		t.Fatal(err)
	}
	var all []*backend.Server
	pools := map[*config.VirtualService]Servers{}
	preg := persist.NewRegistry()
	add := func(v *config.VirtualService) {
		var list []*backend.Server
		for _, rs := range v.RealServers {
			s := f.reg.Lookup(backend.Key{VS: v.ID, Address: rs.Address, Port: rs.Port},
				backend.Settings{ID: rs.ID, Weight: rs.Weight, Limit: rs.Limit, Enabled: config.IsTrue(rs.Enabled)})
			all = append(all, s)
			if config.IsTrue(rs.Enabled) {
				list = append(list, s)
			}
		}
		var sorry *backend.Server
		if v.SorryServer != nil {
			sorry = backend.NewServer(backend.Key{VS: v.ID, Address: v.SorryServer.Address, Port: v.SorryServer.Port},
				backend.Settings{Weight: 1, Enabled: true})
		}
		p, err := balance.NewWithOptions(v.Schedule, list, f.opts)
		if err != nil {
			t.Fatalf("schedule: %v", err)
		}
		srv := Servers{Picker: p, Sorry: sorry}
		if v.Persistence.Mode != "none" {
			pp, err := persist.New(p, list, preg.Table(v.ID, 0), persist.Settings{
				Mode: v.Persistence.Mode, Timeout: time.Duration(v.Persistence.Timeout) * time.Second,
				Name: v.Persistence.Cookie, QueryTag: v.Persistence.QueryTag,
				Secret: []byte("0123456789abcdef0123456789abcdef"),
			})
			if err != nil {
				t.Fatalf("persistence: %v", err)
			}
			t.Cleanup(func() { _ = pp.Close() })
			srv.Persist = Persisted(pp)
		}
		pools[v] = srv
	}
	if len(vs.SubVSs) == 0 {
		add(vs)
	}
	for i := range vs.SubVSs {
		add(&vs.SubVSs[i])
	}
	b := &Build{
		Config:  f.cfg,
		Certs:   store,
		Tickets: certs.NewTicketKeys(0),
		Pools:   pools,
	}
	sc, err := b.BuildService(fmt.Sprintf("virtualServices[id=%d]", vs.ID), vs)
	if err != nil {
		t.Fatal(err)
	}
	// The idle timeout as the data plane resolves it.
	idle := vs.Idletime
	if idle == 0 {
		idle = f.cfg.Options.ConnTimeout
	}
	sc.IdleTimeout = time.Duration(idle) * time.Second
	f.reg.Commit(all)
	return sc
}

func (f *fixture) close() {
	_ = f.ln.Close()
	f.wg.Wait()
	_ = f.proxy.Close()
}

// server returns the backend.Server of the real server at address:port.
func (f *fixture) server(vsID int, address string, port int) *backend.Server {
	return f.reg.Get(backend.Key{VS: vsID, Address: address, Port: port})
}

// client returns an HTTP client that dials the fixture whatever the URL's
// host, with TLS settings tc for https URLs.
func (f *fixture) client(tc *tls.Config) *http.Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "tcp", f.addr)
		},
		TLSClientConfig:   tc,
		ForceAttemptHTTP2: false,
	}
	f.t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: 20 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

// get sends a GET with c and decodes the echo reply.
func getEcho(t testing.TB, c *http.Client, url string, hdr map[string]string) (*http.Response, echoReply) {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	for k, v := range hdr {
		if k == "Host" {
			req.Host = v
		} else {
			req.Header.Set(k, v)
		}
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	var rep echoReply
	if resp.StatusCode == 200 {
		if err := json.Unmarshal(body, &rep); err != nil {
			t.Fatalf("GET %s: %v in %q", url, err, body)
		}
	} else {
		rep.Body = string(body)
	}
	return resp, rep
}

// raw sends bytes on a new connection to the fixture and returns
// everything read until the proxy closes it (or 10 s pass).
func (f *fixture) raw(t testing.TB, req string) string {
	t.Helper()
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, req); err != nil {
		t.Fatal(err)
	}
	out, err := io.ReadAll(c)
	if err != nil && !errors.Is(err, os.ErrDeadlineExceeded) && !strings.Contains(err.Error(), "reset") {
		t.Fatalf("read: %v", err)
	}
	return string(out)
}

// readResponse reads one response from br.
func readResponse(t testing.TB, br *bufio.Reader, method string) *http.Response {
	t.Helper()
	resp, err := http.ReadResponse(br, &http.Request{Method: method})
	if err != nil {
		t.Fatalf("read response: %v", err)
	}
	return resp
}

// waitFor waits up to 10 s for cond.
func waitFor(t testing.TB, what string, cond func() bool) {
	t.Helper()
	testkit.Eventually(t, 10*time.Second, cond, what)
}
