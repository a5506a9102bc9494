package l7

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// sizedBackend is a keep-alive real server answering "GET /N" with an
// N-byte body of a known pattern (byte i is i*7 mod 251). With stray set,
// a response of more than 64 KiB is followed, in the same write, by the
// bytes of a second, unasked-for response.
func sizedBackend(t *testing.T, stray bool) string {
	t.Helper()
	addr, stop := serveConns(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			for { // rest of the head
				l, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(l) <= 2 {
					break
				}
			}
			f := strings.Fields(line)
			n, _ := strconv.Atoi(strings.TrimPrefix(f[1], "/"))
			out := fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", n)
			out = append(out, pattern(n)...)
			if stray && n > 64<<10 {
				out = append(out, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nEVIL!"...)
			}
			if _, err := c.Write(out); err != nil {
				return
			}
		}
	})
	t.Cleanup(stop)
	return addr
}

// serveConns is a real server on 127.0.0.3 (port chosen by the system)
// that runs handle on every connection in a goroutine of its own and
// closes the connection when handle returns. stop closes the listener
// and the open connections and waits for the handlers.
func serveConns(tb testing.TB, handle func(net.Conn)) (addr string, stop func()) {
	tb.Helper()
	s := testkit.StartTCP(tb, "127.0.0.3", handle)
	return s.Addr(), s.Close
}

func pattern(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7 % 251)
	}
	return b
}

// TestLargeBodies sends bodies around and above the splice threshold
// through plain HTTP (spliced from socket to socket) and HTTPS (copied),
// several on one keep-alive connection, and checks every byte.
func TestLargeBodies(t *testing.T) {
	backend := sizedBackend(t, false)
	host, port, _ := net.SplitHostPort(backend)
	root := testkit.NewCA(t, "Root")
	lc, lk := pemPair(root.Server(t, "www.example.com"))
	sizes := []int{0, 1, spliceMin - 1, spliceMin, spliceMin + 1, 1<<20 + 7, 3 << 20}
	for _, tc := range []struct {
		name string
		tls  bool
	}{{"plain", false}, {"tls", true}} {
		t.Run(tc.name, func(t *testing.T) {
			doc := fmt.Sprintf("virtualServices:\n- {address: 127.0.0.2, port: %d, type: http, realServers: [{address: %s, port: %s}]}\n",
				testkit.FreePort(t, "127.0.0.2"), host, port)
			if tc.tls {
				doc = fmt.Sprintf("certificates:\n%s", certYAML("c", lc, lk, false)) +
					fmt.Sprintf("virtualServices:\n- {address: 127.0.0.2, port: %d, type: http, tls: {offload: true, certificates: [c]}, realServers: [{address: %s, port: %s}]}\n",
						testkit.FreePort(t, "127.0.0.2"), host, port)
			}
			f := startVS(t, doc)
			var c net.Conn
			var err error
			if tc.tls {
				c, err = tls.Dial("tcp", f.addr, &tls.Config{InsecureSkipVerify: true})
			} else {
				c, err = net.Dial("tcp", f.addr)
			}
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(30 * time.Second))
			br := bufio.NewReader(c)
			for _, n := range sizes {
				fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: www.example.com\r\n\r\n", n)
				resp := readResponse(t, br, "GET")
				body, err := io.ReadAll(resp.Body)
				if err != nil {
					t.Fatalf("%d bytes: %v", n, err)
				}
				if resp.StatusCode != 200 || resp.ContentLength != int64(n) || !bytes.Equal(body, pattern(n)) {
					t.Fatalf("%d bytes: status %d, Content-Length %d, %d body bytes (equal: %v)",
						n, resp.StatusCode, resp.ContentLength, len(body), bytes.Equal(body, pattern(n)))
				}
			}
		})
	}
}

// TestSplicedStrayBytesNotReused: a real server that sends more than the
// Content-Length it announced must not have the extra bytes taken as the
// answer to the next request — the connection is not reused.
func TestSplicedStrayBytesNotReused(t *testing.T) {
	backend := sizedBackend(t, true)
	host, port, _ := net.SplitHostPort(backend)
	f := startVS(t, fmt.Sprintf("virtualServices:\n- {address: 127.0.0.2, port: %d, type: http, realServers: [{address: %s, port: %s}]}\n",
		testkit.FreePort(t, "127.0.0.2"), host, port))
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(30 * time.Second))
	br := bufio.NewReader(c)
	for i, n := range []int{200000, 5, 300001, 5} {
		fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: www.example.com\r\n\r\n", n)
		resp := readResponse(t, br, "GET")
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(body, pattern(n)) {
			t.Fatalf("request %d (/%d): got %d bytes %.20q, want the %d-byte pattern", i, n, len(body), body, n)
		}
	}
}

// TestSplicedUploadClientFailures: a large request body (spliced to the
// real server) whose client stops sending, or goes away early, ends the
// client connection without an error answer and is not counted as the
// real server's failure.
func TestSplicedUploadClientFailures(t *testing.T) {
	// The real server reads whatever comes until the proxy closes.
	addr, stop := serveConns(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		_, _ = io.Copy(io.Discard, c)
	})
	t.Cleanup(stop)
	host, port, _ := net.SplitHostPort(addr)
	f := startVS(t, fmt.Sprintf("virtualServices:\n- {address: 127.0.0.2, port: %d, type: http, http: {bodyTimeout: 1}, realServers: [{address: %s, port: %s}]}\n",
		testkit.FreePort(t, "127.0.0.2"), host, port))
	p, _ := strconv.Atoi(port)
	srv := f.server(f.cfg.VirtualServices[0].ID, host, p)
	for _, tc := range []struct {
		name  string
		close bool // close the sending side instead of stalling
	}{{"stalled", false}, {"gone", true}} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(15 * time.Second))
			fmt.Fprintf(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", 1<<20)
			if _, err := c.Write(pattern(300 << 10)); err != nil {
				t.Fatal(err)
			}
			if tc.close {
				_ = c.(*net.TCPConn).CloseWrite()
			}
			out, err := io.ReadAll(c)
			if err != nil && !strings.Contains(err.Error(), "reset") {
				t.Fatalf("connection not closed by the proxy: %v", err)
			}
			if len(out) > 0 {
				t.Errorf("client got %q, want the connection closed without an answer", out)
			}
			if n := srv.Failures(); n != 0 {
				t.Errorf("real server counted %d failures, want 0", n)
			}
		})
	}
}
