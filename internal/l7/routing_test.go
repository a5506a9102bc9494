package l7

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// TestContentRulesThreeSubVSs routes three host names to three SubVSs,
// with a flag set by a pre-rule, a negated rule, a default SubVS, and
// header and URL rules on requests and responses.
func TestContentRulesThreeSubVSs(t *testing.T) {
	for _, n := range []string{"meet", "dialin", "lyncdiscover", "other"} {
		_ = n
	}
	meet := startReal(t, "meet", "127.0.0.3", 0, nil, nil)
	dial := startReal(t, "dialin", "127.0.0.4", 0, nil, nil)
	disc := startReal(t, "lyncdiscover", "127.0.0.5", 0, nil, nil)
	def := startReal(t, "default", "127.0.0.6", 0, nil, nil)
	rs := func(s *realServer) string {
		h, p, _ := net.SplitHostPort(s.addr)
		return fmt.Sprintf("[{address: %s, port: %s}]", h, p)
	}
	doc := fmt.Sprintf(`
contentRules:
- {name: host-meet, match: host, pattern: meet.example.com, matchType: prefix, noCase: true}
- {name: host-dialin, match: host, pattern: '^dialin\.', noCase: true}
- {name: host-disc, match: host, pattern: .example.com, matchType: postfix, onlyOnFlag: 2}
- {name: is-discover, match: url, pattern: /autodiscover, matchType: prefix, setFlag: 2}
- {name: not-api, match: header, header: X-Api, pattern: '.', negate: true}
- {name: tag, type: addHeader, header: X-Routed, replacement: by-fulcrum}
- {name: drop-cookie-debug, type: deleteHeader, header: X-Debug}
- {name: old-to-new, type: modifyUrl, pattern: '^/old/(.*)$', replacement: '/new/\1'}
- {name: hide-server, type: deleteHeader, header: X-Server}
- {name: mark, type: replaceHeader, header: Content-Type, pattern: '^application/(.*)$', replacement: 'application/\1; routed=1'}
virtualServices:
- address: 127.0.0.2
  port: %d
  type: http
  http: {preRules: [is-discover], requestRules: [tag, drop-cookie-debug, old-to-new], responseRules: [hide-server, mark]}
  subVSs:
  - {type: http, http: {selectRules: [host-meet]}, realServers: %s}
  - {type: http, http: {selectRules: [host-dialin]}, realServers: %s}
  - {type: http, http: {selectRules: [host-disc]}, realServers: %s}
  - {type: http, http: {selectRules: [not-api]}, realServers: %s}
`, testkit.FreePort(t, "127.0.0.2"), rs(meet), rs(dial), rs(disc), rs(def))
	f := startVS(t, doc)
	c := f.client(nil)
	for _, tt := range []struct {
		host, path string
		hdr        map[string]string
		want       string
	}{
		{"Meet.Example.com", "/x", nil, "meet"},
		{"dialin.example.com:8080", "/x", nil, "dialin"},
		{"lyncdiscover.example.com", "/autodiscover/a", nil, "lyncdiscover"},
		{"lyncdiscover.example.com", "/other", nil, "default"}, // flag 2 not set: falls to not-api
		{"unknown.example.org", "/", nil, "default"},
	} {
		hdr := map[string]string{"Host": tt.host, "X-Debug": "1"}
		for k, v := range tt.hdr {
			hdr[k] = v
		}
		resp, rep := getEcho(t, c, "http://x"+tt.path, hdr)
		if resp.StatusCode != 200 || rep.Server != tt.want {
			t.Errorf("%s%s: status %d, went to %q, want %q", tt.host, tt.path, resp.StatusCode, rep.Server, tt.want)
			continue
		}
		if rep.Header.Get("X-Routed") != "by-fulcrum" || rep.Header.Get("X-Debug") != "" {
			t.Errorf("request rules not applied: %v", rep.Header)
		}
		if resp.Header.Get("X-Server") != "" || resp.Header.Get("Content-Type") != "application/json; routed=1" {
			t.Errorf("response rules not applied: %v", resp.Header)
		}
	}
	_, rep := getEcho(t, c, "http://x/old/page?q=1", map[string]string{"Host": "meet.example.com"})
	if rep.URI != "/new/page?q=1" && rep.URI != "/new/page" {
		t.Errorf("URL rewrite: real server saw %q", rep.URI)
	}
	// With an X-Api header, no rule matches: 503.
	resp, _ := getEcho(t, c, "http://x/", map[string]string{"Host": "unknown.example.org", "X-Api": "1"})
	if resp.StatusCode != 503 {
		t.Errorf("no SubVS matches: status %d, want 503", resp.StatusCode)
	}
}

// TestBodyRule routes on the request body.
func TestBodyRule(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	b := startReal(t, "b", "127.0.0.4", 0, nil, nil)
	ha, pa, _ := net.SplitHostPort(a.addr)
	hb, pb, _ := net.SplitHostPort(b.addr)
	f := startVS(t, fmt.Sprintf(`
contentRules:
- {name: soap, match: body, pattern: '<soap:Envelope'}
virtualServices:
- address: 127.0.0.2
  port: %d
  type: http
  subVSs:
  - {type: http, http: {selectRules: [soap]}, realServers: [{address: %s, port: %s}]}
  - {type: http, realServers: [{address: %s, port: %s}]}
`, testkit.FreePort(t, "127.0.0.2"), ha, pa, hb, pb))
	c := f.client(nil)
	for _, tt := range []struct{ body, want string }{{"<soap:Envelope>x</soap:Envelope>", "a"}, {"plain", "b"}} {
		resp, err := c.Post("http://x/svc", "text/xml", strings.NewReader(tt.body))
		if err != nil {
			t.Fatal(err)
		}
		out, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(out), `"server":"`+tt.want+`"`) {
			t.Errorf("body %q: %s", tt.body, out)
		}
	}
}

// TestServerKilledMidStream: a real server that dies in the middle of a
// response body leaves the client with a truncated, closed connection,
// never a hang or a response that looks complete; the next request goes
// to the surviving server.
func TestServerKilledMidStream(t *testing.T) {
	var dying *realServer
	started := make(chan struct{})
	var once sync.Once
	dying = startReal(t, "dying", "127.0.0.3", 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "1000000")
		_, _ = w.Write([]byte(strings.Repeat("x", 10000)))
		w.(http.Flusher).Flush()
		once.Do(func() { close(started) })
		time.Sleep(50 * time.Millisecond)
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = c.(*net.TCPConn).SetLinger(0)
			c.Close()
		}
	}), nil)
	alive := startReal(t, "alive", "127.0.0.4", 0, nil, nil)
	doc := plainVSPort(t, "", dying, alive)
	doc = strings.Replace(doc, "type: http", "type: http\n  schedule: rr", 1)
	f := startVS(t, doc)
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "GET /big HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	resp := readResponse(t, br, "GET")
	<-started
	n, err := io.Copy(io.Discard, resp.Body)
	if err == nil || n >= 1000000 {
		t.Fatalf("truncated body read as complete: %d bytes, %v", n, err)
	}
	dying.stop()
	// Later requests on new connections go to the survivor (the dead one
	// refuses connections and is retried).
	cl := f.client(nil)
	for i := range 4 {
		resp, rep := getEcho(t, cl, fmt.Sprintf("http://x/%d", i), nil)
		if resp.StatusCode != 200 || rep.Server != "alive" {
			t.Fatalf("after the kill: %d %q", resp.StatusCode, rep.Server)
		}
	}
}

// TestRetries: a connect failure is retried on another server; a POST
// whose server closes without answering is not retried (502), a GET is.
func TestRetries(t *testing.T) {
	var posts, gets int64
	var mu sync.Mutex
	closer := startReal(t, "closer", "127.0.0.3", 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		if r.Method == "POST" {
			posts++
		} else {
			gets++
		}
		mu.Unlock()
		c, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			c.Close() // no response byte
		}
	}), nil)
	good := startReal(t, "good", "127.0.0.4", 0, nil, nil)
	deadPort := testkit.FreePort(t, "127.0.0.5")
	hc, pc, _ := net.SplitHostPort(closer.addr)
	hg, pg, _ := net.SplitHostPort(good.addr)
	f := startVS(t, fmt.Sprintf(`
options: {alwaysPersist: "yes"}
virtualServices:
- address: 127.0.0.2
  port: %d
  type: http
  schedule: rr
  http: {retries: 3}
  realServers: [{address: 127.0.0.5, port: %d}, {address: %s, port: %s}, {address: %s, port: %s}]
`, testkit.FreePort(t, "127.0.0.2"), deadPort, hc, pc, hg, pg))
	c := f.client(nil)
	for i := range 6 {
		resp, rep := getEcho(t, c, fmt.Sprintf("http://x/%d", i), nil)
		if resp.StatusCode != 200 || rep.Server != "good" {
			t.Fatalf("GET %d: %d from %q", i, resp.StatusCode, rep.Server)
		}
	}
	if fails := f.server(f.cfg.VirtualServices[0].ID, "127.0.0.5", deadPort).Failures(); fails == 0 {
		t.Error("connect failures not counted on the dead server")
	}
	// POSTs: whichever server gets them first answers; the closer's are
	// never retried.
	var got502 int
	for i := range 6 {
		resp, err := c.Post(fmt.Sprintf("http://x/p%d", i), "text/plain", strings.NewReader("once"))
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode == 502 {
			got502++
		}
	}
	mu.Lock()
	defer mu.Unlock()
	if got502 == 0 || int64(got502) != posts {
		t.Errorf("%d POSTs reached the closing server, %d got 502: each must be sent once and answered 502", posts, got502)
	}
	if gets == 0 {
		t.Error("no GET reached the closing server: retry path not exercised")
	}
}

// TestErrorAnswers: no real server → 503 plain page, custom page, sorry
// server, a fixed redirect service and a fixed error service.
func TestErrorAnswers(t *testing.T) {
	sorry := startReal(t, "sorry", "127.0.0.7", 0, nil, nil)
	sh, sp, _ := net.SplitHostPort(sorry.addr)
	down := testkit.FreePort(t, "127.0.0.5")
	tests := []struct {
		name, extra string
		status      int
		body, loc   string
	}{
		{"plain 503", "", 503, "503 Service Unavailable\n", ""},
		{"custom page", "  http: {errorPage: '<h1>Back soon</h1>'}\n", 503, "<h1>Back soon</h1>", ""},
		{"sorry server", fmt.Sprintf("  sorryServer: {address: %s, port: %s}\n", sh, sp), 200, `"server":"sorry"`, ""},
		{"redirect service", "  http: {errorUrl: 'https://%h%s'}\n", 302, "", "https://www.example.com/a/b?c=d"},
		{"error service", "  http: {errorCode: 404}\n", 404, "404 Not Found\n", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			doc := fmt.Sprintf("virtualServices:\n- address: 127.0.0.2\n  port: %d\n  type: http\n%s  realServers: [{address: 127.0.0.5, port: %d, enabled: false}]\n",
				testkit.FreePort(t, "127.0.0.2"), tt.extra, down)
			f := startVS(t, doc)
			req, _ := http.NewRequest("GET", "http://www.example.com/a/b?c=d", nil)
			resp, err := f.client(nil).Do(req)
			if err != nil {
				t.Fatal(err)
			}
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != tt.status || !strings.Contains(string(b), tt.body) || resp.Header.Get("Location") != tt.loc {
				t.Fatalf("status %d body %q location %q", resp.StatusCode, b, resp.Header.Get("Location"))
			}
		})
	}
	// A redirect service with no real servers at all (port 80 → https).
	f := startVS(t, fmt.Sprintf("virtualServices:\n- {address: 127.0.0.2, port: %d, type: http, http: {errorUrl: 'https://%%h%%s'}}\n", testkit.FreePort(t, "127.0.0.2")))
	resp, _ := getEcho(t, f.client(nil), "http://meet.example.com/x", nil)
	if resp.StatusCode != 302 || resp.Header.Get("Location") != "https://meet.example.com/x" {
		t.Errorf("redirect VS: %d %q", resp.StatusCode, resp.Header.Get("Location"))
	}
}

// TestSchedulingPerConnectionOrRequest: with always-persist "no" a
// keep-alive connection stays on its first server; with "yes" requests
// rotate.
func TestSchedulingPerConnectionOrRequest(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	b := startReal(t, "b", "127.0.0.4", 0, nil, nil)
	for _, tt := range []struct {
		mode    string
		servers int
	}{{"no", 1}, {"yes", 2}} {
		t.Run(tt.mode, func(t *testing.T) {
			doc := "options: {alwaysPersist: \"" + tt.mode + "\"}\n" + plainVSPort(t, "", a, b)
			f := startVS(t, doc)
			c := f.client(nil)
			seen := map[string]bool{}
			for i := range 6 {
				_, rep := getEcho(t, c, fmt.Sprintf("http://x/%d", i), nil)
				seen[rep.Server] = true
			}
			if len(seen) != tt.servers {
				t.Errorf("one keep-alive connection reached %v, want %d server(s)", seen, tt.servers)
			}
		})
	}
}

// TestUpdateKeepsConnections: Update swaps the routing of a service while
// a keep-alive connection is open; its next request follows the new
// configuration on the same client connection.
func TestUpdateKeepsConnections(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	b := startReal(t, "b", "127.0.0.4", 0, nil, nil)
	doc := plainVSPort(t, "", a)
	f := startVS(t, doc)
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	ask := func() string {
		fmt.Fprint(c, "GET / HTTP/1.1\r\nHost: x\r\n\r\n")
		resp := readResponse(t, br, "GET")
		defer resp.Body.Close()
		return resp.Header.Get("X-Server")
	}
	if got := ask(); got != "a" {
		t.Fatalf("before: %q", got)
	}
	hb, pb, _ := net.SplitHostPort(b.addr)
	ha, pa, _ := net.SplitHostPort(a.addr)
	f.cfg.VirtualServices[0].RealServers[0].Address, f.cfg.VirtualServices[0].RealServers[0].Port = hb, atoi(pb)
	if err := f.svc.Update(f.build(&f.cfg.VirtualServices[0])); err != nil {
		t.Fatal(err)
	}
	_ = ha
	_ = pa
	if got := ask(); got != "b" {
		t.Fatalf("after the update the same connection went to %q, want b", got)
	}
}

func atoi(s string) int {
	n := 0
	fmt.Sscan(s, &n)
	return n
}

// TestPersistence plugs internal/persist in: an active cookie keeps a
// client on its server across connections (per-request scheduling would
// otherwise rotate), and the source-IP mode needs no cookie.
func TestPersistence(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	b := startReal(t, "b", "127.0.0.4", 0, nil, nil)
	for _, mode := range []string{"active-cookie", "src"} {
		t.Run(mode, func(t *testing.T) {
			doc := "options: {alwaysPersist: \"yes\"}\n" + strings.Replace(plainVSPort(t, "", a, b), "type: http",
				"type: http\n  persistence: {mode: "+mode+", timeout: 600}", 1)
			f := startVS(t, doc)
			resp, first := getEcho(t, f.client(nil), "http://x/", nil)
			cookie := resp.Header.Get("Set-Cookie")
			if mode == "active-cookie" && !strings.HasPrefix(cookie, "FULCRUM=") {
				t.Fatalf("no persistence cookie: %v", resp.Header)
			}
			for i := range 6 {
				hdr := map[string]string{}
				if cookie != "" {
					hdr["Cookie"] = strings.Split(cookie, ";")[0]
				}
				_, rep := getEcho(t, f.client(nil), fmt.Sprintf("http://x/%d", i), hdr) // a new connection each time
				if rep.Server != first.Server {
					t.Fatalf("request %d went to %q, first to %q", i, rep.Server, first.Server)
				}
			}
		})
	}
}
