package l7

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// plainVS is a plain-HTTP service on 127.0.0.2 over the given real servers.
func plainVS(extra string, servers ...*realServer) string {
	var rs []string
	for _, s := range servers {
		host, port, _ := net.SplitHostPort(s.addr)
		rs = append(rs, fmt.Sprintf("{address: %s, port: %s}", host, port))
	}
	return fmt.Sprintf(`
virtualServices:
- address: 127.0.0.2
  port: 0
  type: http
  realServers: [%s]
%s`, strings.Join(rs, ", "), extra)
}

// plainVSPort is plainVS on a free port of 127.0.0.2.
func plainVSPort(t testing.TB, extra string, servers ...*realServer) string {
	t.Helper()
	return strings.Replace(plainVS(extra, servers...), "port: 0", fmt.Sprintf("port: %d", testkit.FreePort(t, "127.0.0.2")), 1)
}

func TestProxyForwardsAndKeepsAlive(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	f := startVS(t, plainVSPort(t, "", a))
	c := f.client(nil)
	for i := range 5 {
		resp, rep := getEcho(t, c, fmt.Sprintf("http://www.example.com/p/%d?x=1", i), nil)
		if resp.StatusCode != 200 || rep.Server != "a" || rep.URI != fmt.Sprintf("/p/%d?x=1", i) || rep.Host != "www.example.com" {
			t.Fatalf("request %d: status %d, reply %+v", i, resp.StatusCode, rep)
		}
		if rep.Proto != "HTTP/1.1" {
			t.Errorf("real server saw %s", rep.Proto)
		}
	}
	if n := a.conns.Load(); n != 1 {
		t.Errorf("real server got %d connections for 5 keep-alive requests, want 1 (reuse)", n)
	}
}

func TestProxyPostBodies(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	f := startVS(t, plainVSPort(t, "", a))
	c := f.client(nil)
	big := strings.Repeat("0123456789", 100000) // 1 MB: streamed, not buffered whole
	for _, tt := range []struct {
		name string
		body io.Reader
		cl   int64
	}{
		{"content-length", strings.NewReader(big), int64(len(big))},
		{"chunked", io.MultiReader(strings.NewReader(big[:500000]), strings.NewReader(big[500000:])), -1},
		{"empty", strings.NewReader(""), 0},
	} {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", "http://x/upload", tt.body)
			req.ContentLength = tt.cl
			if tt.cl < 0 {
				req.TransferEncoding = []string{"chunked"}
			}
			resp, err := c.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var rep echoReply
			if err := json.NewDecoder(resp.Body).Decode(&rep); err != nil {
				t.Fatal(err)
			}
			want := big
			if tt.cl == 0 {
				want = ""
			}
			if resp.StatusCode != 200 || rep.Body != want {
				t.Fatalf("status %d, real server got %d bytes, want %d", resp.StatusCode, len(rep.Body), len(want))
			}
		})
	}
}

func TestChunkedResponseWithTrailers(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Trailer", "X-Checksum")
		for i := range 3 {
			fmt.Fprintf(w, "part%d;", i)
			w.(http.Flusher).Flush()
		}
		w.Header().Set("X-Checksum", "abc")
	}), nil)
	f := startVS(t, plainVSPort(t, "", a))
	resp, err := f.client(nil).Get("http://x/")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if string(b) != "part0;part1;part2;" || resp.Trailer.Get("X-Checksum") != "abc" {
		t.Fatalf("body %q trailers %v", b, resp.Trailer)
	}
	if len(resp.TransferEncoding) == 0 || resp.TransferEncoding[0] != "chunked" {
		t.Errorf("transfer encoding %v", resp.TransferEncoding)
	}
}

func TestExpectContinue(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	f := startVS(t, plainVSPort(t, "", a))
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	br := bufio.NewReader(c)
	fmt.Fprint(c, "PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	resp := readResponse(t, br, "PUT")
	if resp.StatusCode != 100 {
		t.Fatalf("got %d before the body, want 100", resp.StatusCode)
	}
	fmt.Fprint(c, "hello")
	resp = readResponse(t, br, "PUT")
	b, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != 200 || !strings.Contains(string(b), `"body":"hello"`) {
		t.Fatalf("status %d body %s", resp.StatusCode, b)
	}
}

func TestAddViaModes(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	tests := []struct {
		mode                 string
		xff, via, clientSide string
	}{
		{"xff", "127.0.0.1", "", ""},
		{"xff-novia", "127.0.0.1", "", ""},
		{"xff-via", "127.0.0.1", "1.1 fulcrum", ""},
		{"none", "", "", ""},
		{"clientside", "", "", "127.0.0.1"},
		{"clientside-via", "", "1.1 fulcrum", "127.0.0.1"},
		{"via", "", "1.1 fulcrum", ""},
	}
	for _, tt := range tests {
		t.Run(tt.mode, func(t *testing.T) {
			f := startVS(t, strings.Replace(plainVSPort(t, "", a), "type: http", "type: http\n  addVia: "+tt.mode, 1))
			_, rep := getEcho(t, f.client(nil), "http://x/", map[string]string{
				"X-Forwarded-For": "6.6.6.6", "X-Real-IP": "6.6.6.6", "Forwarded": "for=6.6.6.6", "X-ClientSide": "6.6.6.6",
			})
			h := rep.Header
			if got := h.Get("X-Forwarded-For"); got != tt.xff {
				t.Errorf("X-Forwarded-For = %q, want %q (a client's own value is replaced, never appended)", got, tt.xff)
			}
			if got := h.Get("Via"); got != tt.via {
				t.Errorf("Via = %q, want %q", got, tt.via)
			}
			if got := h.Get("X-Clientside"); got != tt.clientSide {
				t.Errorf("X-ClientSide = %q, want %q", got, tt.clientSide)
			}
			if h.Get("X-Real-Ip") != "" || h.Get("Forwarded") != "" {
				t.Errorf("forged forwarding headers reached the real server: %v", h)
			}
			if tt.xff != "" && h.Get("X-Forwarded-Proto") != "http" {
				t.Errorf("X-Forwarded-Proto = %q", h.Get("X-Forwarded-Proto"))
			}
		})
	}
}

func TestTrustedProxyAppends(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	f := startVS(t, strings.Replace(plainVSPort(t, "", a), "type: http", "type: http\n  http: {trustedProxies: [127.0.0.0/8]}", 1))
	_, rep := getEcho(t, f.client(nil), "http://x/", map[string]string{"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"})
	if got := rep.Header.Get("X-Forwarded-For"); got != "203.0.113.9, 127.0.0.1" {
		t.Errorf("X-Forwarded-For from a trusted proxy = %q, want appended", got)
	}
	if got := rep.Header.Values("X-Forwarded-Proto"); len(got) != 1 || got[0] != "https" {
		t.Errorf("X-Forwarded-Proto = %v, want the trusted proxy's", got)
	}
}

// TestHopByHop: headers a client names in Connection are removed before
// Fulcrum adds its own, so a client cannot strip X-Forwarded-For
// (CVE-2021-33197 class); Host is preserved, or rewritten when configured.
func TestHopByHop(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	f := startVS(t, plainVSPort(t, "", a))
	out := f.raw(t, "GET /h HTTP/1.1\r\nHost: keep.example\r\nConnection: close, X-Forwarded-For, X-Secret, Host\r\n"+
		"X-Secret: s\r\nKeep-Alive: timeout=5\r\nProxy-Connection: keep-alive\r\nTE: trailers, deflate\r\nX-Kept: k\r\n"+
		"Proxy-Authorization: Basic eA==\r\n\r\n")
	resp := readResponse(t, bufio.NewReader(strings.NewReader(out)), "GET")
	b, _ := io.ReadAll(resp.Body)
	s := string(b)
	for _, bad := range []string{"X-Secret", "Keep-Alive", "Proxy-Connection", "Proxy-Authorization", "deflate"} {
		if strings.Contains(s, bad) {
			t.Errorf("%s reached the real server: %s", bad, s)
		}
	}
	for _, good := range []string{`"X-Forwarded-For":["127.0.0.1"]`, `"X-Kept":["k"]`, `"host":"keep.example"`, `"Te":["trailers"]`} {
		if !strings.Contains(s, good) {
			t.Errorf("missing %s: %s", good, s)
		}
	}
	f2 := startVS(t, strings.Replace(plainVSPort(t, "", a), "type: http", "type: http\n  http: {hostRewrite: internal.example:8080}", 1))
	_, rep := getEcho(t, f2.client(nil), "http://outside.example/", nil)
	if rep.Host != "internal.example:8080" {
		t.Errorf("host rewrite: real server saw %q", rep.Host)
	}
}

func TestH2CUpgradeNeverForwarded(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	f := startVS(t, plainVSPort(t, "", a))
	out := f.raw(t, "GET / HTTP/1.1\r\nHost: x\r\nConnection: Upgrade, HTTP2-Settings, close\r\nUpgrade: h2c\r\nHTTP2-Settings: AAMAAABkAAQAAP__\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 200") || strings.Contains(out, "h2c") || strings.Contains(out, "Http2-Settings") {
		t.Fatalf("h2c upgrade: %q", out)
	}
}

// TestExpectContinueRefused: a real server that answers before asking for
// the body gets its answer relayed, and the client connection (whose body
// was never read) is closed rather than parsed as a new request.
func TestExpectContinueRefused(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, "who are you", http.StatusUnauthorized)
	}), nil)
	f := startVS(t, plainVSPort(t, "", a))
	out := f.raw(t, "PUT /x HTTP/1.1\r\nHost: h\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 401 ") || !strings.Contains(out, "Connection: close\r\n") || strings.Contains(out, "100 Continue") {
		t.Fatalf("got %q", out)
	}
}
