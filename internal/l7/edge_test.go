package l7

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"
)

// TestSmuggling sends each request-smuggling class of reliability.md §2 on
// a raw connection: the proxy must answer with the error status and close,
// and the real server must see nothing.
func TestSmuggling(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	f := startVS(t, plainVSPort(t, "", a))
	tests := []struct {
		name, req string
		status    int
	}{
		{"CL.TE", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 13\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nSMUGGLED", 400},
		{"TE.CL", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n8\r\nSMUGGLED\r\n0\r\n\r\n", 400},
		{"TE.TE obfuscated", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-encoding: x\r\n\r\n0\r\n\r\n", 400},
		{"TE xchunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n", 400},
		{"TE chunked chunked", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked, chunked\r\n\r\n0\r\n\r\n", 501},
		{"TE in HTTP/1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400},
		{"CL differing", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\nab", 400},
		{"CL empty", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length:\r\n\r\n", 400},
		{"CL signed", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +1\r\n\r\na", 400},
		{"CL 0x", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 0x10\r\n\r\n", 400},
		{"CL underscore", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1_0\r\n\r\n", 400},
		{"CL inner space", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1 0\r\n\r\n", 400},
		{"space before colon", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length : 5\r\n\r\nhello", 400},
		{"empty header name", "GET / HTTP/1.1\r\nHost: x\r\n: y\r\nContent-Length: 5\r\n\r\nhello", 400},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: x\r\nX-A: b\r\n c\r\n\r\n", 400},
		{"bare LF", "GET / HTTP/1.1\nHost: x\n\n", 400},
		{"bare CR", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\rb\r\n\r\n", 400},
		{"NUL", "GET / HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n", 400},
		{"chunk size bare LF", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5\nhello\r\n0\r\n\r\n", 400},
		{"chunk size invalid", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\nhello\r\n0\r\n\r\n", 400},
		{"chunk ext bare CR", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n5;a\rb\r\nhello\r\n0\r\n\r\n", 400},
		{"chunk size overflow", "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff1\r\nhello\r\n0\r\n\r\n", 400},
		{"two hosts", "GET / HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n", 400},
		{"no host", "GET / HTTP/1.1\r\n\r\n", 400},
		{"host injection", "GET / HTTP/1.1\r\nHost: x/y\r\n\r\n", 400},
		{"fragment", "GET /a#b HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"bad percent", "GET /a%zz HTTP/1.1\r\nHost: x\r\n\r\n", 400},
		{"http/2.0 line", "GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505},
		{"connect", "CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 405},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := a.requests.Load()
			out := f.raw(t, tt.req)
			want := fmt.Sprintf("HTTP/1.1 %d ", tt.status)
			if !strings.HasPrefix(out, want) {
				t.Fatalf("got %q, want %s", out, want)
			}
			if !strings.Contains(out, "Connection: close\r\n") {
				t.Errorf("no Connection: close in %q", out)
			}
			if strings.Count(out, "HTTP/1.1 ") != 1 {
				t.Errorf("more than one response: %q", out)
			}
			if n := a.requests.Load() - before; n != 0 {
				t.Errorf("the real server saw %d requests", n)
			}
		})
	}
}

// TestSmugglingChunkedBodyAfterForward: a malformed chunk discovered while
// the body is streamed ends both connections; the real server never gets
// a second request out of it.
func TestSmugglingMidBody(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	f := startVS(t, plainVSPort(t, "", a))
	out := f.raw(t, "POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n5\r\nhelloXX0\r\n\r\nGET /admin HTTP/1.1\r\nHost: x\r\n\r\n")
	if strings.Contains(out, "/admin") || strings.Count(out, "HTTP/1.1 ") > 1 {
		t.Fatalf("smuggled request answered: %q", out)
	}
	waitFor(t, "real server idle", func() bool { return a.requests.Load() <= 1 })
}

// TestIdenticalContentLengthCollapsed: identical duplicates are accepted
// and forwarded as one Content-Length.
func TestIdenticalContentLengthCollapsed(t *testing.T) {
	var got []string
	a := startReal(t, "a", "127.0.0.3", 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got = r.Header.Values("Content-Length")
		b, _ := io.ReadAll(r.Body)
		fmt.Fprintf(w, "%s", b)
	}), nil)
	f := startVS(t, plainVSPort(t, "", a))
	out := f.raw(t, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\nContent-Length: 5\r\nConnection: close\r\n\r\nhello")
	if !strings.HasPrefix(out, "HTTP/1.1 200") || !strings.HasSuffix(out, "hello") {
		t.Fatalf("got %q", out)
	}
	if len(got) != 0 { // net/http removes Content-Length from Header; it must have parsed one value
		t.Logf("content-length values: %v", got)
	}
}

func TestLimits(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	f := startVS(t, strings.Replace(plainVSPort(t, "", a), "type: http",
		"type: http\n  http: {maxHeaderBytes: 4096, maxHeaders: 20, maxUri: 1024}", 1))
	tests := []struct {
		name, req string
		status    int
	}{
		{"header bytes", "GET / HTTP/1.1\r\nHost: x\r\nX-Big: " + strings.Repeat("a", 5000) + "\r\n\r\n", 431},
		{"header count", "GET / HTTP/1.1\r\nHost: x\r\n" + strings.Repeat("X-A: b\r\n", 21) + "\r\n", 431},
		{"uri", "GET /" + strings.Repeat("u", 1100) + " HTTP/1.1\r\nHost: x\r\n\r\n", 414},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			out := f.raw(t, tt.req)
			if !strings.HasPrefix(out, fmt.Sprintf("HTTP/1.1 %d ", tt.status)) {
				t.Fatalf("got %.80q, want %d", out, tt.status)
			}
		})
	}
	// At the limits, requests pass.
	out := f.raw(t, "GET /"+strings.Repeat("u", 1000)+" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"+strings.Repeat("X-A: b\r\n", 18)+"\r\n")
	if !strings.HasPrefix(out, "HTTP/1.1 200 ") {
		t.Fatalf("request within limits: %.80q", out)
	}
}

// TestSlowloris: a client trickling its head byte by byte is cut off at
// the header timeout (an absolute deadline, not an inactivity one) with
// 408; one that sends a body too slowly is closed at the body timeout.
func TestSlowloris(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	f := startVS(t, strings.Replace(plainVSPort(t, "", a), "type: http", "type: http\n  http: {headerTimeout: 1, bodyTimeout: 1}", 1))
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	head := "GET / HTTP/1.1\r\nHost: x\r\nX-Slow: " + strings.Repeat("a", 200)
	start := time.Now()
	var closedErr error
	for i := 0; i < len(head) && time.Since(start) < 8*time.Second; i++ {
		if _, err := c.Write([]byte{head[i]}); err != nil {
			closedErr = err
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
	out, _ := io.ReadAll(c)
	if !strings.HasPrefix(string(out), "HTTP/1.1 408 ") {
		t.Fatalf("slow head: got %q (write error %v)", out, closedErr)
	}
	if a.requests.Load() != 0 {
		t.Errorf("the real server saw the slow request")
	}

	// Slow POST body: the head is complete, the body never comes.
	c2, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	fmt.Fprint(c2, "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\nabc")
	_ = c2.SetReadDeadline(time.Now().Add(15 * time.Second))
	_, err = io.ReadAll(c2)
	if err != nil {
		t.Fatalf("slow body: connection not closed by the proxy: %v", err)
	}
}

// TestUpgradeRefusedIsNotTunnelled: when the real server answers an
// upgrade request with anything but 101, the connection stays HTTP: a
// pipelined request after it is parsed, not tunnelled (Pingora
// CVE-2026-2833 class).
func TestUpgradeRefusedIsNotTunnelled(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/ws" {
			http.Error(w, "no websocket here", http.StatusForbidden)
			return
		}
		fmt.Fprintf(w, "path=%s", r.URL.Path)
	}), nil)
	f := startVS(t, plainVSPort(t, "", a))
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	fmt.Fprint(c, "GET /ws HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n\r\n"+
		"GET /admin HTTP/1.1\r\nHost: x\r\n\r\n")
	br := bufio.NewReader(c)
	r1 := readResponse(t, br, "GET")
	_, _ = io.Copy(io.Discard, r1.Body)
	r2 := readResponse(t, br, "GET")
	b, _ := io.ReadAll(r2.Body)
	if r1.StatusCode != 403 || r2.StatusCode != 200 || string(b) != "path=/admin" {
		t.Fatalf("got %d then %d %q", r1.StatusCode, r2.StatusCode, b)
	}
	if n := a.requests.Load(); n != 2 {
		t.Errorf("real server parsed %d requests, want 2", n)
	}
}

// TestRuleOutputValidated: a URL rewrite whose result would not be a valid
// target is not applied (no CR/LF or spaces can be injected by rules).
func TestRuleOutputValidated(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	doc := plainVSPort(t, "contentRules:\n- {name: bad, type: modifyUrl, pattern: '^/x', replacement: 'x y'}\n", a)
	doc = strings.Replace(doc, "type: http", "type: http\n  http: {requestRules: [bad]}", 1)
	f := startVS(t, doc)
	_, rep := getEcho(t, f.client(nil), "http://h/x", nil)
	if rep.URI != "/x" {
		t.Errorf("invalid rewrite applied: %q", rep.URI)
	}
}
