package health

import (
	"context"
	"encoding/hex"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

func TestMain(m *testing.M) {
	if helperMain() {
		return
	}
	goleak.VerifyTestMain(m)
}

// run builds the checker for p and runs one check with the given timeout.
func run(t *testing.T, p Params, tg Target, timeout time.Duration) Result {
	t.Helper()
	c, err := NewChecker(p)
	if err != nil {
		t.Fatalf("NewChecker(%+v): %v", p, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	return c.Check(ctx, tg)
}

// expect runs a check and asserts its outcome and that the reason holds
// every part of want.
func expect(t *testing.T, p Params, tg Target, wantUp bool, want ...string) Result {
	t.Helper()
	r := run(t, p, tg, 10*time.Second)
	if r.Up != wantUp {
		t.Fatalf("%s check of %s: up=%v (%q), want up=%v", p.Type, tg, r.Up, r.Reason, wantUp)
	}
	for _, w := range want {
		if !strings.Contains(r.Reason, w) {
			t.Errorf("reason %q does not contain %q", r.Reason, w)
		}
	}
	if r.Latency <= 0 {
		t.Errorf("latency %v", r.Latency)
	}
	return r
}

// silent returns a target that accepts connections (kernel backlog) but
// never answers.
func silent(t *testing.T, ip string) Target {
	ln := testkit.Listen(t, ip)
	return Target{Address: ip, Port: ln.Addr().(*net.TCPAddr).Port}
}

func TestTCPCheck(t *testing.T) {
	s := startTCP(t, "127.0.0.4")
	expect(t, Params{Type: TypeTCP}, targetOf(s), true, "tcp connect to 127.0.0.4:")
	expect(t, Params{Type: TypeTCP}, closedTarget(t, "127.0.0.4"), false, "tcp 127.0.0.4:", "connection refused")
}

func TestHTTPCheckStatuses(t *testing.T) {
	h := startHTTP(t, "127.0.0.5", nil)
	tg := h.target()
	for _, tc := range []struct {
		code  int
		codes []int
		up    bool
	}{
		{200, nil, true}, {204, nil, true}, {299, nil, true}, {301, nil, true}, {302, nil, true}, {401, nil, true},
		{303, nil, false}, {404, nil, false}, {500, nil, false}, {503, nil, false},
		{404, []int{404}, true}, {503, []int{404, 503}, true}, {418, []int{404}, false},
	} {
		h.set(tc.code, "x")
		want := "http " + strconv.Itoa(tc.code) + " from " + tg.String() + "/"
		expect(t, Params{Type: TypeHTTP, Codes: tc.codes}, tg, tc.up, want)
	}
	// The default method is HEAD, over HTTP/1.0 without a Host header.
	h.set(200, "ok")
	expect(t, Params{Type: TypeHTTP, URL: "/health"}, tg, true)
	last := h.requests()[len(h.requests())-1]
	if last.Method != http.MethodHead || last.Proto != "HTTP/1.0" || last.Host != "" || last.URL.Path != "/health" {
		t.Errorf("request %s %s %s host %q, want HEAD /health HTTP/1.0 without host", last.Method, last.URL, last.Proto, last.Host)
	}
	if ua := last.Header.Get("User-Agent"); ua != userAgent {
		t.Errorf("User-Agent %q", ua)
	}
}

func TestHTTPCheckRequest(t *testing.T) {
	h := startHTTP(t, "127.0.0.5", nil)
	tg := h.target()
	for _, tc := range []struct {
		name    string
		p       Params
		method  string
		proto   string
		host    string
		headers map[string]string
		body    string
	}{
		{"http11 default host", Params{Method: "GET", HTTP11: true}, "GET", "HTTP/1.1", tg.String(), nil, ""},
		{"http11 host", Params{Method: "GET", HTTP11: true, Host: "app.example"}, "GET", "HTTP/1.1", "app.example", nil, ""},
		{"options", Params{Method: "OPTIONS"}, "OPTIONS", "HTTP/1.0", "", nil, ""},
		{"headers", Params{Method: "GET", Headers: map[string]string{"X-A": "1", "X-B": "two", "User-Agent": "probe", "Accept": "*/*"}},
			"GET", "HTTP/1.0", "", map[string]string{"X-A": "1", "X-B": "two", "User-Agent": "probe", "Accept": "*/*"}, ""},
		{"post", Params{Method: "POST", PostData: "a=1&b=2", HTTP11: true}, "POST", "HTTP/1.1", tg.String(),
			map[string]string{"Content-Type": "application/x-www-form-urlencoded", "X-Test-Body": "a=1&b=2"}, "a=1&b=2"},
		{"post json", Params{Method: "POST", PostData: `{"a":1}`, Headers: map[string]string{"Content-Type": "application/json"}},
			"POST", "HTTP/1.0", "", map[string]string{"Content-Type": "application/json", "X-Test-Body": `{"a":1}`}, ""},
		{"pattern turns HEAD into GET", Params{Pattern: "o+k"}, "GET", "HTTP/1.0", "", nil, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.Type = TypeHTTP
			n := len(h.requests())
			expect(t, tc.p, tg, true, "http 200 from "+tg.String()+"/")
			reqs := h.requests()
			if len(reqs) != n+1 {
				t.Fatalf("%d requests, want 1", len(reqs)-n)
			}
			r := reqs[n]
			if r.Method != tc.method || r.Proto != tc.proto || r.Host != tc.host {
				t.Errorf("got %s %s host %q, want %s %s host %q", r.Method, r.Proto, r.Host, tc.method, tc.proto, tc.host)
			}
			for k, v := range tc.headers {
				if got := r.Header.Get(k); got != v {
					t.Errorf("header %s = %q, want %q", k, got, v)
				}
			}
		})
	}
}

func TestHTTPCheckBody(t *testing.T) {
	h := startHTTP(t, "127.0.0.5", nil)
	tg := h.target()
	h.set(200, "status: all good\n")
	expect(t, Params{Type: TypeHTTP, Method: "GET", Pattern: `all\s+good`}, tg, true)
	h.set(200, "status: degraded\n")
	expect(t, Params{Type: TypeHTTP, Method: "GET", Pattern: `all\s+good`}, tg, false, `body does not match "all\\s+good"`)
	// A bad status is Down whatever the body.
	h.set(503, "all good")
	expect(t, Params{Type: TypeHTTP, Method: "GET", Pattern: `all good`}, tg, false, "http 503 from")
	// A pattern beyond the first 64 KiB is not seen.
	h.set(200, strings.Repeat("x", maxBody)+"needle")
	expect(t, Params{Type: TypeHTTP, Method: "GET", Pattern: `needle`}, tg, false, "body does not match")
}

func TestHTTPCheckFailures(t *testing.T) {
	expect(t, Params{Type: TypeHTTP}, closedTarget(t, "127.0.0.5"), false, "http 127.0.0.5:", "/: connect: connection refused")
	r := run(t, Params{Type: TypeHTTP}, silent(t, "127.0.0.5"), 300*time.Millisecond)
	if r.Up || !strings.Contains(r.Reason, "timed out") {
		t.Errorf("silent server: %+v, want a timeout", r)
	}
	junk := startBytes(t, "127.0.0.5", []byte("SSH-2.0-OpenSSH\r\n"))
	expect(t, Params{Type: TypeHTTP}, targetOf(junk), false, "bad answer")
}

func TestHTTPSCheck(t *testing.T) {
	cert, pool := selfSigned(t, "127.0.0.6")
	h := startHTTP(t, "127.0.0.6", &cert)
	tg := h.target()
	for _, tc := range []struct {
		name string
		p    Params
		up   bool
		want string
	}{
		{"verify off", Params{}, true, "https 200 from " + tg.String() + "/"},
		{"verify with the right root", Params{VerifyTLS: true, RootCAs: pool}, true, "https 200"},
		{"verify with system roots", Params{VerifyTLS: true}, false, "certificate: x509:"},
		{"verify by name", Params{VerifyTLS: true, RootCAs: pool, HTTP11: true, Host: "health.test"}, true, "https 200"},
		{"verify wrong name", Params{VerifyTLS: true, RootCAs: pool, HTTP11: true, Host: "other.test"}, false, "certificate"},
		{"wrong name without verify", Params{HTTP11: true, Host: "other.test"}, true, "https 200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.p.Type = TypeHTTPS
			expect(t, tc.p, tg, tc.up, tc.want)
		})
	}
	h.set(503, "")
	expect(t, Params{Type: TypeHTTPS}, tg, false, "https 503 from "+tg.String()+"/")
	plain := startHTTP(t, "127.0.0.6", nil)
	expect(t, Params{Type: TypeHTTPS}, plain.target(), false, "https 127.0.0.6:", "TLS handshake")
}

func TestBannerChecks(t *testing.T) {
	cert, pool := selfSigned(t, "127.0.0.7")
	for _, tc := range []struct {
		typ   string
		proto lineProto
		want  string
	}{
		{TypeSMTP, smtpProto, `smtp greeting from 127.0.0.7:`},
		{TypeFTP, ftpProto, `"220 Welcome"`},
		{TypePOP3, pop3Proto, `"+OK POP3 ready"`},
		{TypeIMAP, imapProto, `"* OK [CAPABILITY`},
		{TypeNNTP, nntpProto, `"200 news.test ready"`},
		{TypeTelnet, telnetProto, `option negotiation`},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			s := startLine(t, "127.0.0.7", tc.proto, &cert)
			expect(t, Params{Type: tc.typ}, s.target(), true, tc.want)
			if tc.proto.startTLS == "" {
				if _, err := NewChecker(Params{Type: tc.typ, StartTLS: true}); err == nil {
					t.Error("StartTLS accepted for a protocol without it")
				}
				return
			}
			expect(t, Params{Type: tc.typ, StartTLS: true}, s.target(), true, "with "+banners[tc.typ].startTLS)
			expect(t, Params{Type: tc.typ, StartTLS: true, VerifyTLS: true, RootCAs: pool}, s.target(), true)
			expect(t, Params{Type: tc.typ, StartTLS: true, VerifyTLS: true}, s.target(), false, "certificate")
			if n := s.tlsCount.Load(); n < 2 {
				t.Errorf("%d TLS sessions on the server, want at least 2", n)
			}
			testkit.Eventually(t, 5*time.Second, func() bool { return s.quits.Load() >= 2 }, "QUIT")
			// Without a certificate the server refuses STARTTLS.
			noTLS := startLine(t, "127.0.0.7", tc.proto, nil)
			expect(t, Params{Type: tc.typ, StartTLS: true}, noTLS.target(), false, "refused")
		})
	}
}

func TestBannerCheckFailures(t *testing.T) {
	for _, tc := range []struct {
		typ      string
		greeting []string
		want     string
	}{
		{TypeSMTP, []string{"554 no service"}, `greeting "554 no service"`},
		{TypeFTP, []string{"120 ready in 5 minutes"}, `greeting "120`},
		{TypePOP3, []string{"-ERR busy"}, `greeting "-ERR busy"`},
		{TypeIMAP, []string{"* BYE overloaded"}, `greeting "* BYE overloaded"`},
		{TypeNNTP, []string{"502 no permission"}, `greeting "502`},
		{TypeSMTP, []string{"hello"}, `not a reply line`},
		{TypeSMTP, []string{"220-first", "220-second"}, `greeting: connection closed`},
		{TypeSMTP, []string{strings.Repeat("2", maxLine+10)}, `longer than`},
	} {
		t.Run(tc.typ, func(t *testing.T) {
			s := startLine(t, "127.0.0.7", lineProto{greeting: tc.greeting, hangUp: true}, nil)
			expect(t, Params{Type: tc.typ}, s.target(), false, tc.want)
		})
	}
	expect(t, Params{Type: TypeSMTP}, closedTarget(t, "127.0.0.7"), false, "connection refused")
	r := run(t, Params{Type: TypeTelnet}, silent(t, "127.0.0.7"), 300*time.Millisecond)
	if r.Up || !strings.Contains(r.Reason, "timed out") {
		t.Errorf("silent telnet server: %+v, want a timeout", r)
	}
}

func TestLDAPCheck(t *testing.T) {
	s := startLDAP(t, "127.0.0.8")
	expect(t, Params{Type: TypeLDAP}, s.target(), true, "ldap anonymous bind to 127.0.0.8:")
	s.code.Store(53)
	expect(t, Params{Type: TypeLDAP}, s.target(), false, `53 unwillingToPerform ("anonymous binds are disabled")`)
	s.code.Store(49)
	expect(t, Params{Type: TypeLDAP}, s.target(), false, "49 invalidCredentials")
	if s.binds.Load() != 3 {
		t.Errorf("%d binds, want 3", s.binds.Load())
	}
	h := startBytes(t, "127.0.0.8", []byte("HTTP/1.0 400 Bad Request\r\n\r\n"))
	expect(t, Params{Type: TypeLDAP}, targetOf(h), false, "ldap 127.0.0.8:", "bind: ")
	expect(t, Params{Type: TypeLDAP}, closedTarget(t, "127.0.0.8"), false, "connection refused")
}

func TestDNSCheck(t *testing.T) {
	s := startDNS(t, "127.0.0.9")
	for _, tc := range []struct {
		rcode int32
		host  string
		up    bool
		want  string
	}{
		{0, "", true, "dns NOERROR from 127.0.0.9:"},
		{3, "missing.health.test", true, "dns NXDOMAIN"},
		{5, "", false, "dns REFUSED"},
		{2, "health.test.", false, "dns SERVFAIL"},
	} {
		s.rcode.Store(tc.rcode)
		expect(t, Params{Type: TypeDNS, Host: tc.host}, s.target(), tc.up, tc.want)
	}
	s.mu.Lock()
	names := strings.Join(s.names, " ")
	s.mu.Unlock()
	if names != ". missing.health.test. . health.test." {
		t.Errorf("names queried: %s", names)
	}
	// Nothing listening: the kernel's port unreachable ends the check.
	port := testkit.FreeUDPPort(t, "127.0.0.9")
	expect(t, Params{Type: TypeDNS}, Target{Address: "127.0.0.9", Port: port}, false, "dns 127.0.0.9:")
}

func TestBDataCheck(t *testing.T) {
	tg := targetOf(startBytes(t, "127.0.0.10", []byte("\x00\x01READY\xff")))
	send := hex.EncodeToString([]byte("PING"))
	expect(t, Params{Type: TypeBData, Send: send, Pattern: hex.EncodeToString([]byte("READY"))}, tg, true, "holds 5245414459")
	expect(t, Params{Type: TypeBData, Send: send, Pattern: "ff"}, tg, true)
	expect(t, Params{Type: TypeBData, Send: send, Pattern: "abcd"}, tg, false, "without abcd")
	expect(t, Params{Type: TypeBData, Send: send}, tg, true, "4 bytes sent")
	expect(t, Params{Type: TypeBData, Send: send}, closedTarget(t, "127.0.0.10"), false, "connection refused")
}

func TestICMPCheck(t *testing.T) {
	r := run(t, Params{Type: TypeICMP}, Target{Address: "127.0.0.1"}, 5*time.Second)
	if !r.Up && strings.Contains(r.Reason, "cannot ping") {
		if os.Getenv("CI") == "true" {
			t.Fatalf("CI must be able to ping (root, or a ping_group_range that includes the user): %s", r.Reason)
		}
		t.Skipf("no ping socket and no raw socket here (run as root or widen net.ipv4.ping_group_range): %s", r.Reason)
	}
	if !r.Up || r.Reason != "icmp echo reply from 127.0.0.1" {
		t.Fatalf("ping 127.0.0.1: %+v", r)
	}
	t.Logf("icmp 127.0.0.1: %v", r.Latency)
	// By name too.
	expect(t, Params{Type: TypeICMP}, Target{Address: "localhost"}, true, "icmp echo reply from localhost")
	if ln, err := net.Listen("tcp", "[::1]:0"); err == nil {
		ln.Close()
		expect(t, Params{Type: TypeICMP}, Target{Address: "::1"}, true, "icmp echo reply from ::1")
	}
	r = run(t, Params{Type: TypeICMP}, Target{Address: "no-such-host.invalid"}, 5*time.Second)
	if r.Up || !strings.Contains(r.Reason, "resolve") {
		t.Errorf("unresolvable name: %+v", r)
	}
}

func TestNewCheckerErrors(t *testing.T) {
	for _, tc := range []struct {
		p    Params
		want string
	}{
		{Params{Type: "rdp"}, `type: unknown check type "rdp"`},
		{Params{Type: TypeNone}, "type: none has no checker"},
		{Params{Type: TypeHTTP, URL: "health"}, "url: must start with /"},
		{Params{Type: TypeHTTP, URL: "/a b"}, "url:"},
		{Params{Type: TypeHTTP, URL: "/\r\nX: y"}, "url:"},
		{Params{Type: TypeHTTP, Method: "DELETE"}, "method: must be HEAD, GET, POST or OPTIONS"},
		{Params{Type: TypeHTTP, HTTP11: true, Host: "a\r\nb"}, "host:"},
		{Params{Type: TypeHTTP, Headers: map[string]string{"X-A\r\nB": "1"}}, "headers:"},
		{Params{Type: TypeHTTP, Headers: map[string]string{"X-A": "1\r\nInjected: yes"}}, "headers: value of X-A"},
		{Params{Type: TypeHTTP, Headers: map[string]string{"A": "", "B": "", "C": "", "D": "", "E": ""}}, "headers: at most 4"},
		{Params{Type: TypeHTTPS, Codes: []int{42}}, "codes: 42"},
		{Params{Type: TypeHTTP, Pattern: "(["}, "pattern: not a valid regular expression"},
		{Params{Type: TypeBData}, "send: required"},
		{Params{Type: TypeBData, Send: "zz"}, "send: required"},
		{Params{Type: TypeBData, Send: "00", Pattern: "x"}, "pattern: must be hex"},
		{Params{Type: TypeDNS, Host: "a..b"}, "host: name"},
		{Params{Type: TypeDNS, Host: strings.Repeat("a", 64) + ".test"}, "host: name"},
		{Params{Type: TypeTelnet, StartTLS: true}, "startTls: telnet has no STARTTLS"},
	} {
		_, err := NewChecker(tc.p)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewChecker(%+v) = %v, want an error containing %q", tc.p, err, tc.want)
		}
	}
}

func TestCheckCancelled(t *testing.T) {
	// Cancelling the context (Monitor.Close) ends a check at once, even one
	// without a deadline.
	tg := silent(t, "127.0.0.11")
	for _, typ := range []string{TypeHTTP, TypeSMTP, TypeLDAP, TypeTelnet} {
		c, err := NewChecker(Params{Type: typ})
		if err != nil {
			t.Fatal(err)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan Result)
		go func() { done <- c.Check(ctx, tg) }()
		time.Sleep(20 * time.Millisecond)
		cancel()
		select {
		case r := <-done:
			if r.Up {
				t.Errorf("%s: cancelled check passed", typ)
			}
		case <-time.After(10 * time.Second):
			t.Fatalf("%s: check did not end after cancel", typ)
		}
	}
}
