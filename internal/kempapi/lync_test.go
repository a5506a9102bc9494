package kempapi

import (
	"crypto/tls"
	"encoding/base64"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// The Lync 2013 reverse-proxy setup of the seed walk-through, driven only
// through the LoadMaster-compatible API (v1 and v2), then used for real:
// HTTPS on 443 to front ends on 4443 and HTTP on 80 to front ends on 8080,
// with real backends on loopback addresses and the real data plane.

// lyncDriver runs one command through one API version and returns the
// data of a success answer as a flat map of "Path/To/Element" → values.
type lyncDriver interface {
	run(t *testing.T, cmd string, params [][2]string, body []byte) map[string][]string
}

type v1Driver struct{ e *env }

func (d v1Driver) run(t *testing.T, cmd string, params [][2]string, body []byte) map[string][]string {
	t.Helper()
	var parts []string
	for _, p := range params {
		parts = append(parts, url.QueryEscape(p[0])+"="+url.QueryEscape(p[1]))
	}
	a := d.e.v1(auth{}, cmd, strings.Join(parts, "&"), body)
	x := d.e.mustXML(a, http.StatusOK, cmd)
	out := map[string][]string{}
	if data := x.data(); data != nil {
		flattenXML(data, "", out)
	} else {
		out["Success"] = []string{strings.TrimSpace(x.val("Success"))}
	}
	return out
}

func flattenXML(x *xnode, prefix string, out map[string][]string) {
	for _, k := range x.kids {
		p := prefix + k.name
		if len(k.kids) == 0 {
			out[p] = append(out[p], strings.TrimSpace(k.text))
			continue
		}
		flattenXML(k, p+"/", out)
	}
}

type v2Driver struct{ e *env }

func (d v2Driver) run(t *testing.T, cmd string, params [][2]string, body []byte) map[string][]string {
	t.Helper()
	m := map[string]any{}
	for _, p := range params {
		// Numbers and booleans go as JSON numbers and booleans, as the Go
		// and Python clients send them.
		if n, err := strconv.Atoi(p[1]); err == nil && p[0] != "vs" && p[0] != "rs" {
			m[p[0]] = n
			continue
		}
		m[p[0]] = p[1]
	}
	if body != nil {
		m["data"] = base64.StdEncoding.EncodeToString(body)
	}
	j := d.e.ok2(cmd, m)
	out := map[string][]string{}
	flattenJSON(j, "", out)
	return out
}

func flattenJSON(j *jval, prefix string, out map[string][]string) {
	switch j.kind {
	case 'o':
		for _, k := range j.keys {
			if prefix == "" && (k == "code" || k == "status") {
				continue
			}
			flattenJSON(j.obj[k], prefix+k+"/", out)
		}
	case 'a':
		for _, v := range j.arr {
			flattenJSON(v, prefix, out)
		}
	default:
		p := strings.TrimSuffix(prefix, "/")
		switch j.kind {
		case 's':
			out[p] = append(out[p], j.s)
		case 'n':
			out[p] = append(out[p], j.n.String())
		case 'b':
			v := "N"
			if j.b {
				v = "Y"
			}
			out[p] = append(out[p], v)
		}
	}
}

// preferredPort returns want if addr:want can be bound (ports below 1024
// need privileges), else a free port on addr.
func preferredPort(t *testing.T, addr string, want int) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(addr, strconv.Itoa(want)))
	if err == nil {
		ln.Close()
		return want
	}
	if !errors.Is(err, syscall.EACCES) && !errors.Is(err, syscall.EADDRINUSE) {
		t.Fatal(err)
	}
	port := testkit.FreePort(t, addr)
	t.Logf("%s:%d cannot be bound (%v); using port %d", addr, want, err, port)
	return port
}

// backend starts a real HTTP (or HTTPS) server on addr that answers its
// name.
func backend(t *testing.T, addr string, port int, name string, useTLS bool) int {
	t.Helper()
	port = preferredPort(t, addr, port)
	ln := testkit.ListenAt(t, net.JoinHostPort(addr, strconv.Itoa(port)))
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, name)
	})
	var cfg *tls.Config
	if useTLS {
		cert := testkit.SelfSigned(t, testkit.Leaf{Names: []string{addr}})
		cfg = &tls.Config{Certificates: []tls.Certificate{cert.TLS()}, NextProtos: []string{"http/1.1"}}
	}
	testkit.ServeHTTP(t, ln, h, cfg)
	return port
}

// fetch makes one request on a new connection and returns the body.
func fetch(rawURL string) (string, error) {
	tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: "lync.example.com"}}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr, Timeout: 5 * time.Second}
	res, err := c.Get(rawURL)
	if err != nil {
		return "", err
	}
	defer res.Body.Close()
	b, err := io.ReadAll(res.Body)
	return string(b), err
}

// answers makes n requests and returns who answered, waiting (bounded)
// for the first one to succeed.
func answers(t *testing.T, rawURL string, n int) map[string]int {
	t.Helper()
	got := map[string]int{}
	testkit.EventuallyState(t, 15*time.Second, func() (bool, string) {
		body, err := fetch(rawURL)
		if err != nil {
			return false, err.Error()
		}
		got[body]++
		return true, ""
	}, rawURL+" to answer")
	for i := 1; i < n; i++ {
		body, err := fetch(rawURL)
		if err != nil {
			t.Fatalf("%s request %d: %v", rawURL, i, err)
		}
		got[body]++
	}
	return got
}

func only(t *testing.T, what string, got map[string]int, allowed ...string) {
	t.Helper()
	for who := range got {
		ok := false
		for _, a := range allowed {
			ok = ok || who == a
		}
		if !ok {
			t.Fatalf("%s: answered by %q, want only %v (all: %v)", what, who, allowed, got)
		}
	}
}

func TestLyncSetupV1(t *testing.T) {
	e := newEnv(t, envOpts{dataPlane: true})
	lyncSetup(t, e, v1Driver{e}, "127.0.88")
}

func TestLyncSetupV2(t *testing.T) {
	e := newEnv(t, envOpts{dataPlane: true})
	lyncSetup(t, e, v2Driver{e}, "127.0.89")
}

func lyncSetup(t *testing.T, e *env, api lyncDriver, net24 string) {
	vip, fe1, fe2 := net24+".1", net24+".11", net24+".12"
	httpsPort, httpPort := preferredPort(t, vip, 443), preferredPort(t, vip, 80)
	fePort := backend(t, fe1, 4443, "fe1", true)
	if p := backend(t, fe2, fePort, "fe2", true); p != fePort {
		t.Fatalf("front ends on different ports %d and %d", fePort, p)
	}
	webPort := backend(t, fe1, 8080, "web1", false)
	if p := backend(t, fe2, webPort, "web2", false); p != webPort {
		t.Fatalf("web servers on different ports %d and %d", webPort, p)
	}
	ch := newChain(t, "lync.example.com", "meet.example.com", "dialin.example.com")
	s := strconv.Itoa
	https := [][2]string{{"vs", vip}, {"port", s(httpsPort)}, {"prot", "tcp"}}
	http80 := [][2]string{{"vs", vip}, {"port", s(httpPort)}, {"prot", "tcp"}}
	with := func(base [][2]string, more ...[2]string) [][2]string {
		return append(append([][2]string{}, base...), more...)
	}

	// The Lync guide's global settings.
	for _, p := range [][2]string{{"snat", "0"}, {"subnetorigin", "1"}, {"droponfail", "1"}, {"conntimeout", "1800"}} {
		api.run(t, "set", [][2]string{{"param", p[0]}, {"value", p[1]}}, nil)
	}
	// Certificate and intermediate.
	api.run(t, "addcert", [][2]string{{"cert", "lync"}}, ch.leafPEM)
	api.run(t, "addintermediate", [][2]string{{"cert", "lyncca"}}, ch.interPEM)
	if c := api.run(t, "listcert", nil, nil); len(c["cert/name"]) != 1 || c["cert/name"][0] != "lync" {
		t.Fatalf("listcert: %v", c)
	}

	// VS 443 → front ends on 4443: TLS offload and re-encryption, super HTTP
	// persistence with source IP, least connection, idle 1800.
	vs := api.run(t, "addvs", with(https, [2]string{"VStype", "http"}, [2]string{"NickName", "Lync Reverse Proxy HTTPS"},
		[2]string{"SSLAcceleration", "1"}, [2]string{"SSLReencrypt", "1"}, [2]string{"CertFile", "lync"},
		[2]string{"IntermediateCerts", "lyncca"}, [2]string{"Schedule", "lc"}, [2]string{"Persist", "super-src"},
		[2]string{"PersistTimeout", "1800"}, [2]string{"Idletime", "1800"}, [2]string{"CheckType", "https"},
		[2]string{"CheckUrl", "/"}), nil)
	if vs["Schedule"][0] != "lc" || vs["Persist"][0] != "super-src" || vs["Idletime"][0] != "1800" || vs["SSLAcceleration"][0] != "Y" {
		t.Fatalf("addvs 443: %v", vs)
	}
	for _, fe := range []string{fe1, fe2} {
		rs := api.run(t, "addrs", with(https, [2]string{"rs", fe}, [2]string{"rsport", s(fePort)}), nil)
		if rs["Rs/Addr"][0] != fe || rs["Rs/Port"][0] != s(fePort) {
			t.Fatalf("addrs: %v", rs)
		}
	}
	// VS 80 → 8080: source IP persistence, least connection, idle 1800.
	vs = api.run(t, "addvs", with(http80, [2]string{"VStype", "http"}, [2]string{"NickName", "Lync Reverse Proxy HTTP"},
		[2]string{"Schedule", "lc"}, [2]string{"Persist", "src"}, [2]string{"Idletime", "1800"}, [2]string{"CheckType", "http"}), nil)
	if vs["Persist"][0] != "src" {
		t.Fatalf("addvs 80: %v", vs)
	}
	for _, fe := range []string{fe1, fe2} {
		api.run(t, "addrs", with(http80, [2]string{"rs", fe}, [2]string{"rsport", s(webPort)}), nil)
	}

	cfg := e.ctl.Current().Config
	if len(cfg.VirtualServices) != 2 || len(cfg.VirtualServices[0].RealServers) != 2 || cfg.Options.ConnTimeout != 1800 || !cfg.Options.DropOnFail {
		t.Fatalf("configuration after setup: %+v", cfg.Options)
	}

	// Real traffic through both services.
	httpsURL := fmt.Sprintf("https://%s/", net.JoinHostPort(vip, s(httpsPort)))
	httpURL := fmt.Sprintf("http://%s/", net.JoinHostPort(vip, s(httpPort)))
	only(t, "https", answers(t, httpsURL, 6), "fe1", "fe2")
	only(t, "http", answers(t, httpURL, 6), "web1", "web2")

	// Disable a front end everywhere: both services use the other.
	api.run(t, "disablers", [][2]string{{"rs", fe1}}, nil)
	only(t, "https with fe1 disabled", answers(t, httpsURL, 6), "fe2")
	only(t, "http with fe1 disabled", answers(t, httpURL, 6), "web2")
	show := api.run(t, "showrs", with(http80, [2]string{"rs", fe1}, [2]string{"rsport", s(webPort)}), nil)
	if show["Rs/Enable"][0] != "N" {
		t.Fatalf("showrs after disablers: %v", show)
	}
	api.run(t, "enablers", [][2]string{{"rs", fe1}}, nil)
	// Disable the other one on the HTTP service only.
	api.run(t, "modrs", with(http80, [2]string{"rs", fe2}, [2]string{"rsport", s(webPort)}, [2]string{"enable", "0"}), nil)
	only(t, "http with web2 disabled", answers(t, httpURL, 6), "web1")
	only(t, "https with both enabled", answers(t, httpsURL, 4), "fe1", "fe2")

	// Statistics show the traffic.
	st := api.run(t, "stats", nil, nil)
	if len(st["Vs/Index"]) != 2 {
		t.Fatalf("stats has %d Vs: %v", len(st["Vs/Index"]), st)
	}
	for i, conns := range st["Vs/TotalConns"] {
		if n, _ := strconv.Atoi(conns); n == 0 {
			t.Errorf("stats: service %s has no connections", st["Vs/Index"][i])
		}
	}
	if total, _ := strconv.Atoi(st["VStotals/TotalConns"][0]); total < 20 {
		t.Errorf("VStotals TotalConns %d", total)
	}
	if len(st["Rs/RSIndex"]) != 4 {
		t.Errorf("stats has %d Rs", len(st["Rs/RSIndex"]))
	}
	tot := api.run(t, "vstotals", nil, nil)
	if tot["VS/Total"][0] != "2" || tot["RS/Total"][0] != "4" || tot["RS/Disabled"][0] != "1" {
		t.Errorf("vstotals: %v", tot)
	}
	if got := api.run(t, "showvs", https, nil)["Status"][0]; got != "Up" {
		t.Errorf("showvs 443 status %s", got)
	}
}
