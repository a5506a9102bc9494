// Package lync builds the Lync 2013 walk-through of shared/seed on one
// machine: a pool of three emulated Front End servers and two Office Web
// Apps servers on 127.0.2.x, a public-style certificate with its
// intermediate, the three templates the walk-through uses (Reverse Proxy,
// Internal HLB, Office Web Apps), the real servers — and then checks what
// the admin checks: port translation, least-connection spread, Super HTTP
// and Source IP stickiness, every status Up, `verify` green, and a Front
// End failure.
package lync

import (
	"bytes"
	"context"
	"crypto/tls"
	"crypto/x509"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/crypto/bcrypt"

	"github.com/fulcrum-lb/fulcrum/internal/appliance"
	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m, goleak.IgnoreAnyFunction("net/http.(*persistConn).writeLoop"),
		goleak.IgnoreAnyFunction("net/http.(*persistConn).readLoop"), goleak.IgnoreAnyFunction("internal/poll.runtime_pollWait"))
}

// Addresses of the walk-through, all on loopback.
const (
	rpVIP  = "127.0.1.10" // Lync Reverse Proxy
	hlbVIP = "127.0.1.20" // Lync Internal HLB
	owaVIP = "127.0.1.30" // Office Web Apps
)

var (
	frontEnds = []string{"127.0.2.11", "127.0.2.12", "127.0.2.13"}
	owas      = []string{"127.0.2.21", "127.0.2.22"}
	// The Front End ports the templates use (HLB: the same port on the
	// server; reverse proxy: 4443 and 8080).
	httpsPorts = []int{443, 4443}
	httpPorts  = []int{80, 8080}
	tcpPorts   = []int{135, 444, 448, 5070, 5071, 5072, 5073, 5075, 5076, 5080}
)

type pki struct {
	root         *x509.Certificate
	rootPEM      string
	publicBundle string // leaf + key, for import
	interPEM     string
	serverCert   tls.Certificate // what the Front Ends and OWA servers present
}

func newPKI(t *testing.T) *pki {
	t.Helper()
	root := testkit.NewCA(t, "Walk-through Root CA")
	inter := root.Intermediate(t, "Walk-through Issuing CA")
	names := []string{"meet.example.com", "dialin.example.com", "lyncweb.example.com", "lyncwebint.example.com", "wac.example.com"}
	pub := inter.Server(t, names...)
	return &pki{
		root: root.Certificate, rootPEM: root.CertPEM(),
		publicBundle: pub.CertPEM() + pub.KeyPEM(),
		interPEM:     inter.CertPEM(),
		serverCert:   inter.Server(t, names...).TLS(),
	}
}

// server is one emulated Lync server: backends on its ports, closed by
// kill.
type server struct {
	addr    string
	mu      sync.Mutex
	closers []func()
}

func (s *server) kill() {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, c := range s.closers {
		c()
	}
	s.closers = nil
}

func startServer(t *testing.T, addr, role string, p *pki, https, plain, tcp []int) *server {
	t.Helper()
	s := &server{addr: addr}
	handler := func(port int) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintf(w, "%s %s:%d %s %s\n", role, addr, port, r.Host, r.URL.Path)
		})
	}
	listen := func(port int) net.Listener { return testkit.ListenAt(t, fmt.Sprintf("%s:%d", addr, port)) }
	for _, port := range https {
		h := testkit.ServeHTTP(t, listen(port), handler(port), &tls.Config{Certificates: []tls.Certificate{p.serverCert}})
		s.closers = append(s.closers, h.Close)
	}
	for _, port := range plain {
		h := testkit.ServeHTTP(t, listen(port), handler(port), nil)
		s.closers = append(s.closers, h.Close)
	}
	for _, port := range tcp {
		// SIP/DCOM/...: hold the connection, answer a line with the server's name.
		b := testkit.ServeTCP(t, listen(port), func(c net.Conn) {
			buf := make([]byte, 512)
			for {
				if _, err := c.Read(buf); err != nil {
					return
				}
				fmt.Fprintf(c, "%s %s\n", role, addr)
			}
		})
		s.closers = append(s.closers, b.Close)
	}
	t.Cleanup(s.kill)
	return s
}

// startAppliance runs Fulcrum in-process on a temporary data directory
// and returns a client of its native API; both end with the test.
func startAppliance(t *testing.T) *admin {
	t.Helper()
	addr := testkit.FreeAddr(t, "127.0.0.1")
	app, err := appliance.Start(appliance.Options{DataDir: t.TempDir(), AdminAddr: addr, AdminPassword: "walk-through passphrase",
		BcryptCost: bcrypt.MinCost, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}
	t.Cleanup(func() {
		tr.CloseIdleConnections()
		_ = app.Close()
	})
	return &admin{t: t, base: app.AdminURL(), hc: &http.Client{Transport: tr, Timeout: 60 * time.Second}}
}

// admin talks to the appliance's native API.
type admin struct {
	t    *testing.T
	base string
	hc   *http.Client
}

func (a *admin) do(method, path string, body any, out any) int {
	a.t.Helper()
	var r io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		r = bytes.NewReader(b)
	}
	req, _ := http.NewRequest(method, a.base+path, r)
	req.SetBasicAuth("bal", "walk-through passphrase")
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := a.hc.Do(req)
	if err != nil {
		a.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if out != nil {
		if err := json.Unmarshal(b, out); err != nil {
			a.t.Fatalf("%s %s: %d %s", method, path, resp.StatusCode, b)
		}
	}
	if resp.StatusCode >= 300 {
		a.t.Logf("%s %s: %d %s", method, path, resp.StatusCode, b)
	}
	return resp.StatusCode
}

type vsStatus struct {
	ID          int    `json:"id"`
	Address     string `json:"address"`
	Port        int    `json:"port"`
	Health      string `json:"health"`
	State       string `json:"state"`
	RealServers []struct {
		Address string `json:"address"`
		Status  string `json:"status"`
	} `json:"realServers"`
}

func (a *admin) status() []vsStatus {
	var st struct {
		VirtualServices []vsStatus `json:"virtualServices"`
	}
	a.do("GET", "/api/v1/status", nil, &st)
	return st.VirtualServices
}

// client is a browser at a given source address.
func client(src string, roots *x509.CertPool) *http.Client {
	d := &net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}, Timeout: 5 * time.Second}
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{RootCAs: roots},
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			// Clients resolve every walk-through name to the VIPs.
			host, port, _ := net.SplitHostPort(addr)
			switch host {
			case "meet.example.com", "dialin.example.com", "lyncweb.example.com":
				host = rpVIP
			case "lyncwebint.example.com":
				host = hlbVIP
			case "wac.example.com":
				host = owaVIP
			}
			return d.DialContext(ctx, network, net.JoinHostPort(host, port))
		}}
	return &http.Client{Transport: tr, Timeout: 10 * time.Second}
}

func get(t *testing.T, c *http.Client, url, ua string) string {
	t.Helper()
	req, _ := http.NewRequest("GET", url, nil)
	req.Header.Set("User-Agent", ua)
	resp, err := c.Do(req)
	if err != nil {
		t.Fatalf("GET %s: %v", url, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %d %s", url, resp.StatusCode, b)
	}
	return string(b)
}

func TestLyncWalkThrough(t *testing.T) {
	p := newPKI(t)
	roots := x509.NewCertPool()
	roots.AddCert(p.root)
	fes := map[string]*server{}
	for _, a := range frontEnds {
		fes[a] = startServer(t, a, "frontend", p, httpsPorts, httpPorts, append([]int{5061}, tcpPorts...))
	}
	for _, a := range owas {
		startServer(t, a, "owa", p, []int{443}, nil, nil)
	}
	a := startAppliance(t)

	// General configuration, as in the walk-through: SNAT off, subnet
	// originating on, drop connections on RS failure, long drain time.
	a.do("PATCH", "/api/v1/options", map[string]any{"snat": false, "subnetOriginating": true, "dropOnFail": true, "drainTime": 86400}, nil)
	// The public certificate and its intermediate.
	if c := a.do("POST", "/api/v1/certificates", map[string]any{"name": "lync-public", "pem": p.publicBundle}, nil); c != 201 {
		t.Fatal("certificate import")
	}
	if c := a.do("POST", "/api/v1/certificates", map[string]any{"name": "lync-issuing-ca", "pem": p.interPEM, "intermediate": true}, nil); c != 201 {
		t.Fatal("intermediate import")
	}
	// The three templates, with the real servers.
	for name, params := range map[string]map[string]any{
		"lync2013-reverse-proxy":   {"vip": rpVIP, "certificate": "lync-public", "frontEnds": frontEnds},
		"lync2013-internal-hlb":    {"vip": hlbVIP, "frontEnds": frontEnds},
		"lync2013-office-web-apps": {"vip": owaVIP, "certificate": "lync-public", "servers": owas},
	} {
		if c := a.do("POST", "/api/v1/templates/"+name+"/instantiate", map[string]any{"parameters": params}, nil); c != 201 {
			t.Fatalf("template %s", name)
		}
	}

	// Every service Up once the first checks are in.
	testkit.EventuallyState(t, 30*time.Second, func() (bool, string) {
		st := a.status()
		for _, v := range st {
			if v.Health != "Up" {
				return false, fmt.Sprintf("%s:%d is %s/%s", v.Address, v.Port, v.Health, v.State)
			}
		}
		return len(st) == 18, fmt.Sprintf("%d services", len(st))
	}, "all services Up")

	// Port translation: 443 → 4443 with offload and re-encryption, 80 → 8080.
	c := client("127.0.3.1", roots)
	if got := get(t, c, "https://meet.example.com/", "Lync/15"); !strings.Contains(got, ":4443 meet.example.com /") {
		t.Errorf("443 answered %q", got)
	}
	if got := get(t, c, "http://meet.example.com/", "Lync/15"); !strings.Contains(got, ":8080 meet.example.com /") {
		t.Errorf("80 answered %q", got)
	}

	// Super HTTP and Source IP: each (browser, address) stays on one Front End
	// over many new connections.
	stuck := map[string]string{}
	for i := 0; i < 12; i++ {
		src := fmt.Sprintf("127.0.3.%d", 10+i)
		cl := client(src, roots)
		ua := fmt.Sprintf("Mozilla/5.0 (walk-through %d)", i)
		first := strings.Fields(get(t, cl, "https://meet.example.com/meet/", ua))[1]
		for j := 0; j < 10; j++ {
			if got := strings.Fields(get(t, cl, "https://meet.example.com/meet/", ua))[1]; got != first {
				t.Fatalf("client %s moved from %s to %s", src, first, got)
			}
		}
		stuck[src+"|"+ua] = strings.Split(first, ":")[0]
	}
	spread := map[string]int{}
	for _, fe := range stuck {
		spread[fe]++
	}
	// (Sequential clients leave every Front End idle between requests, so
	// least connection breaks ties at random here; the spread under load is
	// checked on SIP below.)
	if len(spread) < 2 {
		t.Errorf("12 clients all on one Front End: %v", spread)
	}
	t.Logf("Super HTTP and Source IP: 12 clients × 11 requests stayed put; spread %v", spread)

	// Least connection on the internal SIP service: 30 held connections from
	// 30 addresses spread evenly.
	var held []net.Conn
	defer func() {
		for _, h := range held {
			h.Close()
		}
	}()
	perFE := map[string]int{}
	for i := 0; i < 30; i++ {
		d := net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP(fmt.Sprintf("127.0.4.%d", 10+i))}, Timeout: 5 * time.Second}
		conn, err := d.Dial("tcp", hlbVIP+":5061")
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, conn)
		_ = conn.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintln(conn, "OPTIONS sip:pool SIP/2.0")
		line := make([]byte, 64)
		n, err := conn.Read(line)
		if err != nil {
			t.Fatal(err)
		}
		perFE[strings.Fields(string(line[:n]))[1]]++
	}
	for fe, n := range perFE {
		if n < 8 || n > 12 {
			t.Errorf("least connection: %s holds %d of 30 (%v)", fe, n, perFE)
		}
	}
	t.Logf("least connection, SIP 5061: 30 held connections spread %v", perFE)

	// Deployment verification is green.
	var rep struct {
		Passed, Failed int
		Results        []struct {
			Check, RealServer, Error string
			Pass                     bool
			DownServers              []string
		}
	}
	a.do("POST", "/api/v1/verify", map[string]any{"caPem": p.rootPEM}, &rep)
	if rep.Failed != 0 || rep.Passed < 9 {
		t.Errorf("verify: %d passed, %d failed: %+v", rep.Passed, rep.Failed, rep.Results)
	}
	t.Logf("verify: %d passed, %d failed", rep.Passed, rep.Failed)
	for _, r := range rep.Results {
		t.Logf("  %s: %v via %q", r.Check, r.Pass, r.RealServer)
	}

	// A Front End dies: its clients move, it is Down, verify names who answers.
	victim := frontEnds[0]
	killed := time.Now()
	fes[victim].kill()
	testkit.EventuallyState(t, 60*time.Second, func() (bool, string) {
		n := 0
		for _, v := range a.status() {
			for _, rs := range v.RealServers {
				if rs.Address == victim {
					if rs.Status != "Down" {
						return false, fmt.Sprintf("%s:%d: %s", v.Address, v.Port, rs.Status)
					}
					n++
				}
			}
		}
		return n == 17, fmt.Sprintf("%d services", n)
	}, "the dead Front End marked Down on every service")
	t.Logf("Front End %s marked Down %.1f s after it died", victim, time.Since(killed).Seconds())
	for key, fe := range stuck {
		src, ua, _ := strings.Cut(key, "|")
		got := strings.Split(strings.Fields(get(t, client(src, roots), "https://meet.example.com/meet/", ua))[1], ":")[0]
		switch {
		case fe == victim && got == victim:
			t.Errorf("client %s still sent to the dead Front End", src)
		case fe != victim && got != fe:
			t.Errorf("client %s moved from healthy %s to %s", src, fe, got)
		}
	}
	a.do("POST", "/api/v1/verify", map[string]any{"caPem": p.rootPEM}, &rep)
	named := 0
	for _, r := range rep.Results {
		if !r.Pass || strings.HasPrefix(r.RealServer, victim+":") {
			t.Errorf("verify after the failure: %+v", r)
		}
		for _, d := range r.DownServers {
			if strings.HasPrefix(d, victim+":") {
				named++
			}
		}
	}
	if named < 8 { // every Lync check but Office Web Apps goes through a service of the dead Front End
		t.Errorf("the verify report names the dead Front End in %d of %d results", named, len(rep.Results))
	}
}
