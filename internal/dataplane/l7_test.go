package dataplane

import (
	"bufio"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/config"
	"github.com/fulcrum-lb/fulcrum/internal/status"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// pki is a test CA, an intermediate it signed and a leaf the intermediate
// signed, for www.example.test and 127.0.0.1.
type pki struct {
	caPEM, interPEM, leafPEM, keyPEM string
	roots                            *x509.CertPool
	leaf                             tls.Certificate // leaf and intermediate, for real servers
}

func newTestPKI(t testing.TB) *pki {
	t.Helper()
	ca := testkit.NewCA(t, "Fulcrum Test Root")
	inter := ca.Intermediate(t, "Fulcrum Test Intermediate")
	leaf := inter.Server(t, "www.example.test", "127.0.0.1")
	return &pki{
		caPEM: ca.CertPEM(), interPEM: inter.CertPEM(), leafPEM: leaf.CertPEM(), keyPEM: leaf.KeyPEM(),
		roots: ca.Pool(), leaf: leaf.TLS(),
	}
}

// webServer is a real HTTP (or HTTPS) server started by a test: it
// answers every request with "<tag> <host> <tls>" and the header
// X-Backend: <tag>.
type webServer struct {
	tag  string
	port int
}

func startWeb(t testing.TB, tag string, cert *tls.Certificate) *webServer {
	t.Helper()
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("X-Backend", tag)
		_, _ = io.Copy(io.Discard, r.Body)
		fmt.Fprintf(w, "%s %s %v", tag, r.Host, r.TLS != nil)
	})
	if cert != nil {
		return &webServer{tag: tag, port: testkit.StartHTTPS(t, "127.0.0.1", h, *cert).Port()}
	}
	return &webServer{tag: tag, port: testkit.StartHTTP(t, "127.0.0.1", h).Port()}
}

func webRS(id int, s *webServer, weight int) config.RealServer {
	return config.RealServer{ID: id, Address: "127.0.0.1", Port: s.port, Weight: weight}
}

// httpVS is a tcp service of type http.
func httpVS(id int, addr string, port int, rss ...config.RealServer) config.VirtualService {
	vs := vsOf(id, addr, port, rss...)
	vs.Protocol, vs.Type = "tcp", "http"
	return vs
}

// newClient returns an HTTP client that opens a new connection for every
// request (keep-alive off), with tlsConf for https.
func newClient(tlsConf *tls.Config, keepAlive bool) *http.Client {
	tr := &http.Transport{DisableKeepAlives: !keepAlive, TLSClientConfig: tlsConf, ForceAttemptHTTP2: false,
		TLSNextProto: map[string]func(string, *tls.Conn) http.RoundTripper{}}
	return &http.Client{Transport: tr, Timeout: 20 * time.Second}
}

// get sends a GET with the given User-Agent and returns the answer's
// body and backend tag.
func get(t testing.TB, c *http.Client, url, ua string) (body, backend string) {
	t.Helper()
	req, err := http.NewRequest("GET", url, nil)
	if err != nil {
		t.Fatal(err)
	}
	if ua != "" {
		req.Header.Set("User-Agent", ua)
	}
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("GET %s: body: %v", url, err)
	}
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s %q", url, resp.Status, b)
	}
	return string(b), resp.Header.Get("X-Backend")
}

func TestL7SuperSrcPersistence(t *testing.T) {
	e := newEngine(t)
	ws := []*webServer{startWeb(t, "a", nil), startWeb(t, "b", nil), startWeb(t, "c", nil)}
	port := testkit.FreePort(t, "127.0.0.2")
	vs := httpVS(1, "127.0.0.2", port, webRS(11, ws[0], 1), webRS(12, ws[1], 1), webRS(13, ws[2], 1))
	vs.Schedule = "lc"
	vs.Persistence = config.Persistence{Mode: "super-src", Timeout: 600}
	mustApply(t, e, conf(t, vs))
	url := "http://" + hostPort("127.0.0.2", port) + "/"
	c := newClient(nil, false)
	for _, ua := range []string{"agent-one", "agent-two", "agent-three"} {
		_, first := get(t, c, url, ua)
		if first == "" {
			t.Fatal("answer without X-Backend")
		}
		for i := range 15 {
			if _, got := get(t, c, url, ua); got != first {
				t.Fatalf("%s request %d went to %s, first to %s", ua, i, got, first)
			}
		}
	}
	st := e.Status()[0]
	if st.State != status.Up || st.L7 == nil || st.L7.Requests != 48 {
		t.Fatalf("status: state %s, reason %q, l7 %+v", st.State, st.Reason, st.L7)
	}
	if st.TotalConns != 48 || st.Persistence == nil || st.Persistence.Entries == 0 {
		t.Fatalf("status: conns %d, persistence %+v", st.TotalConns, st.Persistence)
	}
}

func TestL7OffloadReencrypt(t *testing.T) {
	e := newEngine(t)
	p := newTestPKI(t)
	a, b := startWeb(t, "a", &p.leaf), startWeb(t, "b", &p.leaf)
	port := testkit.FreePort(t, "127.0.0.3")
	vs := httpVS(1, "127.0.0.3", port, webRS(11, a, 1), webRS(12, b, 1))
	vs.TLS = config.TLS{Offload: true, Reencrypt: true, Certificates: []string{"site"}, VerifyServer: true, CABundle: p.caPEM}
	mustApply(t, e, confWith(t, func(c *config.Config) {
		c.Certificates = []config.Certificate{
			{Name: "site", CertPEM: p.leafPEM, KeyPEM: p.keyPEM},
			{Name: "inter", Intermediate: true, CertPEM: p.interPEM},
		}
	}, vs))

	c := newClient(&tls.Config{RootCAs: p.roots, ServerName: "www.example.test"}, false)
	seen := map[string]bool{}
	for range 10 {
		body, tag := get(t, c, "https://"+hostPort("127.0.0.3", port)+"/x", "")
		if want := tag + " " + hostPort("127.0.0.3", port) + " true"; body != want {
			t.Fatalf("body %q, want %q (the real server must see TLS)", body, want)
		}
		seen[tag] = true
	}
	if !seen["a"] || !seen["b"] {
		t.Fatalf("requests reached %v, want both real servers", seen)
	}
	// The chain is completed with the intermediate.
	conn, err := tls.Dial("tcp", hostPort("127.0.0.3", port), &tls.Config{RootCAs: p.roots, ServerName: "www.example.test"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(conn.ConnectionState().PeerCertificates); n != 2 {
		t.Errorf("chain of %d certificates, want leaf and intermediate", n)
	}
	conn.Close()
	if st := e.Status()[0]; st.Reason != "" || st.State != status.Up {
		t.Errorf("status %s %q", st.State, st.Reason)
	}
}

// rawGet sends a keep-alive GET on c and returns the backend tag.
func rawGet(c net.Conn, r *bufio.Reader, host string) (string, error) {
	if _, err := fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", host); err != nil {
		return "", err
	}
	resp, err := http.ReadResponse(r, nil)
	if err != nil {
		return "", err
	}
	defer resp.Body.Close()
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return "", err
	}
	if resp.StatusCode != 200 || resp.Close {
		return "", fmt.Errorf("status %s, close %v", resp.Status, resp.Close)
	}
	return resp.Header.Get("X-Backend"), nil
}

func TestL7ReloadKeepsKeepAlive(t *testing.T) {
	e := newEngine(t)
	a, b := startWeb(t, "a", nil), startWeb(t, "b", nil)
	ports := testkit.FreePorts(t, "127.0.0.4", 2)
	addr := hostPort("127.0.0.4", ports[0])
	mustApply(t, e, conf(t, httpVS(1, "127.0.0.4", ports[0], webRS(11, a, 1), webRS(12, b, 1))))

	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	r := bufio.NewReader(c)
	if _, err := rawGet(c, r, "site"); err != nil {
		t.Fatal(err)
	}

	// Reload: weights change and another service arrives.
	mustApply(t, e, conf(t,
		httpVS(1, "127.0.0.4", ports[0], webRS(11, a, 5), webRS(12, b, 1)),
		httpVS(2, "127.0.0.4", ports[1], webRS(21, b, 1))))
	for i := range 5 {
		if _, err := rawGet(c, r, "site"); err != nil {
			t.Fatalf("request %d on the kept connection after the reload: %v", i, err)
		}
	}
	if _, tag := get(t, newClient(nil, false), "http://"+hostPort("127.0.0.4", ports[1])+"/", ""); tag != "b" {
		t.Fatalf("added service answered from %q", tag)
	}
	if st := e.Status(); len(st) != 2 || st[0].RealServers[0].Weight != 5 || st[0].L7.Requests != 6 {
		t.Fatalf("status after reload: %+v", st)
	}

	// Removing service 2 closes its socket; service 1 keeps serving.
	mustApply(t, e, conf(t, httpVS(1, "127.0.0.4", ports[0], webRS(11, a, 5), webRS(12, b, 1))))
	if conn, err := net.DialTimeout("tcp", hostPort("127.0.0.4", ports[1]), 5*time.Second); err == nil {
		conn.Close()
		t.Fatal("the removed service still accepts connections")
	}
	if _, err := rawGet(c, r, "site"); err != nil {
		t.Fatalf("kept connection after removing another service: %v", err)
	}
}

func TestL7SubVSByHost(t *testing.T) {
	e := newEngine(t)
	a1, a2, b := startWeb(t, "a1", nil), startWeb(t, "a2", nil), startWeb(t, "b", nil)
	port := testkit.FreePort(t, "127.0.0.5")
	vs := httpVS(1, "127.0.0.5", port)
	vs.SubVSs = []config.VirtualService{
		{ID: 2, Type: "http", HTTP: &config.HTTPSettings{SelectRules: []string{"meet"}},
			RealServers: []config.RealServer{webRS(21, a1, 1), webRS(22, a2, 1)}},
		{ID: 3, Type: "http", RealServers: []config.RealServer{webRS(31, b, 1)}},
	}
	mustApply(t, e, confWith(t, func(c *config.Config) {
		c.ContentRules = []config.ContentRule{{Name: "meet", Type: "match", Match: "host", MatchType: "prefix", Pattern: "meet.", NoCase: true}}
	}, vs))

	c := newClient(nil, true)
	url := "http://" + hostPort("127.0.0.5", port) + "/"
	for i := range 10 {
		for host, want := range map[string]string{"MEET.example.test": "a", "www.example.test": "b"} {
			req, _ := http.NewRequest("GET", url, nil)
			req.Host = host
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if tag := resp.Header.Get("X-Backend"); !strings.HasPrefix(tag, want) {
				t.Fatalf("request %d for %s reached %q, want SubVS %s", i, host, tag, want)
			}
		}
	}
	st := e.Status()[0]
	if st.State != status.Up || st.L7 == nil || len(st.L7.SubVSs) != 2 {
		t.Fatalf("status %s %q %+v", st.State, st.Reason, st.L7)
	}
	if s0, s1 := st.L7.SubVSs[0], st.L7.SubVSs[1]; s0.Requests != 10 || s1.Requests != 10 || len(s0.RealServers) != 2 {
		t.Fatalf("SubVS status %+v", st.L7.SubVSs)
	}
	if k := e.Server(backendKey(2, webRS(21, a1, 1))); k == nil {
		t.Fatal("SubVS real server not in the registry")
	}
}

func TestL7ActiveCookie(t *testing.T) {
	e := newEngine(t)
	ws := []*webServer{startWeb(t, "a", nil), startWeb(t, "b", nil), startWeb(t, "c", nil)}
	port := testkit.FreePort(t, "127.0.0.6")
	vs := httpVS(1, "127.0.0.6", port, webRS(11, ws[0], 1), webRS(12, ws[1], 1), webRS(13, ws[2], 1))
	vs.Persistence = config.Persistence{Mode: "active-cookie", Cookie: "fulcrum", Timeout: 600}
	mustApply(t, e, conf(t, vs))
	url := "http://" + hostPort("127.0.0.6", port) + "/"

	firsts := map[string]bool{}
	for range 3 {
		jar, err := cookiejar.New(nil)
		if err != nil {
			t.Fatal(err)
		}
		c := newClient(nil, false)
		c.Jar = jar
		_, first := get(t, c, url, "")
		cookies := jar.Cookies(mustURL(t, url))
		if len(cookies) != 1 || cookies[0].Name != "fulcrum" {
			t.Fatalf("cookies after the first answer: %v", cookies)
		}
		firsts[first] = true
		for i := range 10 {
			if _, got := get(t, c, url, ""); got != first {
				t.Fatalf("request %d with the cookie went to %s, first to %s", i, got, first)
			}
		}
	}
	// Round robin gives each new client without a cookie the next server.
	if len(firsts) < 2 {
		t.Errorf("three new clients all went to %v", firsts)
	}
}

func TestL7RemovedServiceStops(t *testing.T) {
	e := newEngine(t)
	a := startWeb(t, "a", nil)
	port := testkit.FreePort(t, "127.0.0.7")
	mustApply(t, e, conf(t, httpVS(1, "127.0.0.7", port, webRS(11, a, 1))))
	if _, tag := get(t, newClient(nil, false), "http://"+hostPort("127.0.0.7", port)+"/", ""); tag != "a" {
		t.Fatalf("answer from %q", tag)
	}
	// The service becomes layer 4: same socket, a new handler.
	gen := vsOf(1, "127.0.0.7", port, rsOf(11, startTag(t, "t"), 1))
	mustApply(t, e, conf(t, gen))
	testkit.Eventually(t, 10*time.Second, func() bool {
		tag, err := askOnce(hostPort("127.0.0.7", port))
		return err == nil && tag == "t"
	}, "the layer-4 service")

	mustApply(t, e, conf(t))
	if c, err := net.DialTimeout("tcp", hostPort("127.0.0.7", port), 5*time.Second); err == nil {
		c.Close()
		t.Fatal("the removed service still accepts connections")
	}
}

func TestL7GenOffloadNote(t *testing.T) {
	e := newEngine(t)
	p := newTestPKI(t)
	port := testkit.FreePort(t, "127.0.0.8")
	vs := vsOf(1, "127.0.0.8", port, rsOf(11, startTag(t, "t"), 1))
	vs.TLS = config.TLS{Offload: true, Certificates: []string{"site"}}
	mustApply(t, e, confWith(t, func(c *config.Config) {
		c.Certificates = []config.Certificate{{Name: "site", CertPEM: p.leafPEM, KeyPEM: p.keyPEM}}
	}, vs))
	if st := e.Status()[0]; !strings.Contains(st.Reason, "TLS passes through") {
		t.Errorf("reason %q", st.Reason)
	}
}

// confWith builds a validated configuration of vss after edit.
func confWith(t testing.TB, edit func(*config.Config), vss ...config.VirtualService) *config.Config {
	t.Helper()
	c := config.Default()
	c.VirtualServices = vss
	edit(c)
	c.SetDefaults()
	if err := c.Validate(); err != nil {
		t.Fatalf("test configuration invalid: %v", err)
	}
	return c
}

func mustURL(t testing.TB, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

func backendKey(vsID int, rs config.RealServer) backend.Key {
	return backend.Key{VS: vsID, Address: rs.Address, Port: rs.Port}
}
