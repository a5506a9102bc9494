package kempapi

import (
	"bytes"
	"crypto/tls"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// The acceptance test of issue 18: a LoadMaster automation script builds
// the Lync 2013 reverse-proxy deployment of the seed walk-through through
// /accessv2 only, with content rules, SubVSs and the built-in template, at
// the default rate limit (options.apiRateLimit unset: 30 calls in 3 s).
// Then real HTTPS traffic goes through what it built.

// lyncScript plays an automation script against /accessv2: JSON bodies as
// Kemp's SDKs send them (cmd, apiuser/apipass, every parameter a string).
// It is a well-behaved client: on 429 it waits as long as Retry-After
// says and sends the call again.
type lyncScript struct {
	t     *testing.T
	e     *env
	calls int // calls that succeeded
	n429  int // answers 429 (each followed by a wait and a retry)
	wait  time.Duration
}

// call sends cmd with the parameters given as name, value pairs and fails
// the test unless LoadMaster's success answer comes back (HTTP 200, code
// 200, status ok). It returns the data flattened as flattenJSON does.
func (s *lyncScript) call(cmd string, kv ...string) map[string][]string {
	s.t.Helper()
	body := map[string]string{"cmd": cmd, "apiuser": "bal", "apipass": balPW}
	for i := 0; i+1 < len(kv); i += 2 {
		body[kv[i]] = kv[i+1]
	}
	b, err := json.Marshal(body)
	if err != nil {
		s.t.Fatal(err)
	}
	for attempt := 0; ; attempt++ {
		r, _ := http.NewRequest(http.MethodPost, s.e.srv.URL+"/accessv2", bytes.NewReader(b))
		r.Header.Set("Content-Type", "application/json")
		a := s.e.do(r)
		if a.status == http.StatusTooManyRequests && attempt < 5 {
			ra, err := strconv.Atoi(a.header.Get("Retry-After"))
			if err != nil || ra < 1 || ra > 10 {
				s.t.Fatalf("%s: 429 with Retry-After %q: %s", cmd, a.header.Get("Retry-After"), a.body)
			}
			s.n429++
			s.wait += time.Duration(ra) * time.Second
			s.t.Logf("%s: 429 (%s), waiting Retry-After %d s", cmd, strings.TrimSpace(string(a.body)), ra)
			time.Sleep(time.Duration(ra) * time.Second)
			continue
		}
		j, err := parseJSON(a.body)
		if err != nil {
			s.t.Fatalf("%s: %v: %s", cmd, err, a.body)
		}
		if a.status != http.StatusOK || j.get("code").num() != 200 || j.get("status").s != "ok" {
			s.t.Fatalf("%s %v: HTTP %d: %s", cmd, kv, a.status, a.body)
		}
		s.calls++
		out := map[string][]string{}
		flattenJSON(j, "", out)
		return out
	}
}

// tlsEcho starts an HTTPS server on addr:port that answers its name, the
// path and the X-Forwarded-Proto header it received.
func tlsEcho(t *testing.T, addr string, port int, name string) {
	t.Helper()
	ln := testkit.ListenAt(t, net.JoinHostPort(addr, strconv.Itoa(port)))
	cert := testkit.SelfSigned(t, testkit.Leaf{Names: []string{addr}})
	cfg := &tls.Config{Certificates: []tls.Certificate{cert.TLS()}, NextProtos: []string{"http/1.1"}}
	testkit.ServeHTTP(t, ln, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		proto := "plain"
		if r.TLS != nil {
			proto = "tls"
		}
		_, _ = fmt.Fprintf(w, "%s %s %s %s", name, r.URL.Path, proto, r.Header.Get("X-Forwarded-Proto"))
	}), cfg)
}

// lyncPaths are the Lync external web services the reverse proxy
// publishes (meetings, dial-in, address book, autodiscover, web ticket,
// UCWA and mobility, scheduler, persistent chat, web app plug-in).
var lyncPaths = []string{"/meet", "/dialin", "/abs", "/autodiscover", "/webticket", "/ucwa", "/mcx", "/scheduler", "/persistentchat", "/reach"}

func TestLyncScriptV2(t *testing.T) {
	start := time.Now()
	e := newEnv(t, envOpts{dataPlane: true, configLimit: true})
	if got := e.ctl.Current().Config.Options.APIRateLimit; got != 0 {
		t.Fatalf("apiRateLimit %d, want the default", got)
	}
	net24 := "127.0.77"
	vip, fe1, fe2, owa := net24+".1", net24+".11", net24+".12", net24+".21"
	// The template creates 443 and 80; a machine where they cannot be
	// bound moves them (modvs VSPort), as the seed moves its services.
	httpsPort, httpPort := preferredPort(t, vip, 443), preferredPort(t, vip, 80)
	fePort := preferredPort(t, fe1, 4443)
	tlsEcho(t, fe1, fePort, "fe1")
	tlsEcho(t, fe2, fePort, "fe2")
	owaPort := preferredPort(t, owa, 443)
	webPort := backend(t, fe1, 8080, "web1", false)
	if p := backend(t, fe2, webPort, "web2", false); p != webPort {
		t.Fatalf("web servers on ports %d and %d", webPort, p)
	}
	tlsEcho(t, owa, owaPort, "owa")
	ch := newChain(t, "lync.example.com", "meet.example.com", "dialin.example.com", "lyncweb.example.com", "owa.example.com")
	s := &lyncScript{t: t, e: e}
	b64 := base64.StdEncoding.EncodeToString

	// The seed's global settings.
	for _, p := range [][2]string{{"snat", "0"}, {"subnetorigin", "1"}, {"droponfail", "1"}} {
		s.call("set", "param", p[0], "value", p[1])
	}
	// Certificate and intermediate, as the SDKs upload files.
	s.call("addcert", "cert", "lync", "data", b64(ch.leafPEM))
	s.call("addintermediate", "cert", "lyncca", "data", b64(ch.interPEM))

	// The template: find it by its title, apply it with addvs template=.
	l := s.call("listtemplates")
	tmpl := ""
	for i, title := range l["template/comment"] {
		if strings.Contains(title, "Reverse Proxy") && strings.Contains(title, "2013") {
			tmpl = l["template/name"][i]
		}
	}
	if tmpl == "" {
		t.Fatalf("listtemplates has no Lync 2013 reverse proxy: %v", l)
	}
	vs := s.call("addvs", "vs", vip, "port", "443", "prot", "tcp", "template", tmpl, "certificate", "lync")
	parent := vs["Index"][0]
	if httpsPort != 443 {
		s.call("modvs", "vs", parent, "VSPort", strconv.Itoa(httpsPort))
	}
	if httpPort != 80 {
		s.call("modvs", "vs", vip, "port", "80", "prot", "tcp", "VSPort", strconv.Itoa(httpPort))
	}
	if vs["NickName"][0] != "Lync Reverse Proxy HTTPS" || vs["SSLAcceleration"][0] != "Y" || vs["SSLReencrypt"][0] != "Y" {
		t.Fatalf("addvs template: %v", vs)
	}
	// The seed: check the certificate, Super HTTP and Source IP, least
	// connection (modvs echoing the template's values).
	s.call("modvs", "vs", parent, "CertFile", "lync", "IntermediateCerts", "lyncca", "Persist", "super-src", "PersistTimeout", "1800", "Schedule", "lc")

	// The template's HTTP service (80 to the Front Ends' 8080).
	for _, fe := range []string{fe1, fe2} {
		s.call("addrs", "vs", vip, "port", strconv.Itoa(httpPort), "prot", "tcp", "rs", fe, "rsport", strconv.Itoa(webPort))
	}

	// SubVSs: the Front Ends' web services (4443) and Office Web Apps (443).
	s.call("modvs", "vs", parent, "createsubvs", "")
	vs = s.call("modvs", "vs", parent, "createsubvs", "")
	subs := vs["SubVS/VSIndex"]
	if len(subs) != 2 {
		t.Fatalf("two SubVSs: %v", vs)
	}
	web, office := subs[0], subs[1]
	for _, sub := range []struct{ idx, name string }{{web, "Lync Web Services"}, {office, "Office Web Apps"}} {
		got := s.call("modvs", "vs", sub.idx, "NickName", sub.name, "Schedule", "lc", "Persist", "super-src", "PersistTimeout", "1800")
		if got["VStype"][0] != "http" || got["NickName"][0] != sub.name {
			t.Fatalf("SubVS %s: %v", sub.idx, got)
		}
	}
	for _, fe := range []string{fe1, fe2} {
		s.call("addrs", "vs", web, "rs", fe, "rsport", strconv.Itoa(fePort))
	}
	s.call("addrs", "vs", office, "rs", owa, "rsport", strconv.Itoa(owaPort))

	// Content rules: one per web service path, one by host for Office Web
	// Apps, and a header rule on both SubVSs.
	for _, p := range lyncPaths {
		name := "lync" + strings.TrimPrefix(p, "/")
		s.call("addrule", "name", name, "type", "0", "pattern", p, "matchtype", "prefix", "nocase", "1")
		s.call("addrsrule", "vs", parent, "rs", "!"+web, "rule", name)
	}
	s.call("addrule", "name", "owahost", "type", "0", "header", "Host", "pattern", `^owa\.example\.com(:[0-9]+)?$`, "matchtype", "regex", "nocase", "1")
	s.call("addrsrule", "vs", parent, "rs", "!"+office, "rule", "owahost")
	s.call("addrule", "name", "fwdproto", "type", "1", "header", "X-Forwarded-Proto", "replacement", "https")
	s.call("addrequestrule", "vs", web, "rule", "fwdproto")
	s.call("addrequestrule", "vs", office, "rule", "fwdproto")

	// What the script built.
	rules := s.call("showrule")
	if len(rules["MatchContentRule/name"]) != len(lyncPaths)+1 || fmt.Sprint(rules["AddHeaderRule/name"]) != "[fwdproto]" {
		t.Fatalf("showrule: %v", rules)
	}
	show := s.call("showvs", "vs", parent)
	if fmt.Sprint(show["SubVS/VSIndex"]) != fmt.Sprint(subs) || show["Persist"][0] != "super-src" || show["Schedule"][0] != "lc" {
		t.Fatalf("showvs parent: %v", show)
	}
	show = s.call("showvs", "vs", web)
	if len(show["Rs/Addr"]) != 2 || show["Rs/Port"][0] != strconv.Itoa(fePort) || show["NRequestRules"][0] != "1" {
		t.Fatalf("showvs web services: %v", show)
	}
	show = s.call("showvs", "vs", office)
	t.Logf("SubVS Office Web Apps: SSLAcceleration %v SSLReencrypt %v (it re-encrypts as its parent does)", show["SSLAcceleration"], show["SSLReencrypt"])
	if l := s.call("listvs"); len(l["VS/Index"]) != 4 {
		t.Fatalf("listvs: 2 services and 2 SubVSs, got %v", l["VS/Index"])
	}
	t.Logf("script: %d calls succeeded, %d answers 429 (waited %s as Retry-After said), %s", s.calls, s.n429, s.wait, time.Since(start).Round(time.Millisecond))
	if s.calls < 40 {
		t.Fatalf("only %d calls: the script is meant to exceed the default rate limit's burst", s.calls)
	}

	// Real traffic: each web service path reaches a Front End over TLS on
	// 4443 with the header; the Office Web Apps host reaches its server.
	base := "https://" + net.JoinHostPort(vip, strconv.Itoa(httpsPort))
	for _, p := range []string{"/meet/", "/Dialin/x", "/abs/handler", "/autodiscover/autodiscoverservice.svc/root", "/ucwa/v1"} {
		got := answersHost(t, base+p, "lyncweb.example.com", 2)
		for body := range got {
			if !strings.HasSuffix(body, " tls https") || !(strings.HasPrefix(body, "fe1 ") || strings.HasPrefix(body, "fe2 ")) {
				t.Fatalf("%s: answered %v, want a Front End over TLS with X-Forwarded-Proto https", p, got)
			}
		}
	}
	only(t, "http 80", answers(t, "http://"+net.JoinHostPort(vip, strconv.Itoa(httpPort))+"/dialin/", 4), "web1", "web2")
	only(t, "owa host", answersHost(t, base+"/hosting/discovery", "owa.example.com", 3), "owa /hosting/discovery tls https")
}

// answersHost is answers with a Host header: n requests on new
// connections, waiting (bounded) for the first to succeed.
func answersHost(t *testing.T, rawURL, host string, n int) map[string]int {
	t.Helper()
	get := func() (string, error) {
		tr := &http.Transport{DisableKeepAlives: true, TLSClientConfig: &tls.Config{InsecureSkipVerify: true, ServerName: host}}
		defer tr.CloseIdleConnections()
		r, err := http.NewRequest(http.MethodGet, rawURL, nil)
		if err != nil {
			return "", err
		}
		r.Host = host
		res, err := (&http.Client{Transport: tr, Timeout: 5 * time.Second}).Do(r)
		if err != nil {
			return "", err
		}
		defer res.Body.Close()
		b, err := io.ReadAll(res.Body)
		if res.StatusCode != http.StatusOK {
			return "", fmt.Errorf("status %d: %s", res.StatusCode, b)
		}
		return string(b), err
	}
	got := map[string]int{}
	testkit.EventuallyState(t, 15*time.Second, func() (bool, string) {
		body, err := get()
		if err != nil {
			return false, err.Error()
		}
		got[body]++
		return true, ""
	}, rawURL+" to answer")
	for i := 1; i < n; i++ {
		body, err := get()
		if err != nil {
			t.Fatalf("%s request %d: %v", rawURL, i, err)
		}
		got[body]++
	}
	return got
}
