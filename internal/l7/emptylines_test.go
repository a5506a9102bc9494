package l7

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"
)

// TestLeadingEmptyLines: one or two empty lines (CRLF) before a request
// line are ignored (RFC 9112 §2.2), on a new connection, after a
// keep-alive request (also when they come alone, after the client was idle
// longer than the header timeout) and after a body; a third, or a bare
// LF, is refused.
func TestLeadingEmptyLines(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	f := startVS(t, strings.Replace(plainVSPort(t, "", a), "type: http", "type: http\n  http: {headerTimeout: 1}", 1))
	for _, tt := range []struct {
		name, req string
		status    int
	}{
		{"one CRLF", "\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200},
		{"two CRLF", "\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200},
		{"three CRLF", "\r\n\r\n\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400},
		{"bare LF", "\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400},
		{"CR LF LF", "\r\n\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 400},
		{"after a body", "POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\n\r\nabc\r\nGET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n", 200},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out := f.raw(t, tt.req)
			want := fmt.Sprintf("HTTP/1.1 %d ", tt.status)
			if !strings.HasPrefix(out, want) {
				t.Fatalf("got %.80q, want %s", out, want)
			}
			if strings.HasPrefix(tt.req, "POST") && strings.Count(out, "HTTP/1.1 200 ") != 2 {
				t.Fatalf("want both requests answered, got %q", out)
			}
		})
	}

	// Keep-alive: the empty lines come alone, before and after the
	// client stays idle longer than the header timeout.
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	br := bufio.NewReader(c)
	for i, gap := range []string{"", "\r\n", "\r\n\r\n"} {
		if gap != "" {
			if _, err := io.WriteString(c, gap); err != nil {
				t.Fatal(err)
			}
			time.Sleep(1500 * time.Millisecond)
		}
		fmt.Fprintf(c, "GET /k%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
		resp := readResponse(t, br, "GET")
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 {
			t.Fatalf("keep-alive request %d after %q: %d", i, gap, resp.StatusCode)
		}
	}
}
