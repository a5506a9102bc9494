package l7

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// TestIdleWaitAndPipelining drives the HTTP/1.1 loop through its waits:
// requests pipelined in one write, a head larger than what is read while
// idle, a head arriving in pieces, and requests after the connection sat
// idle (its buffers given back) — every answer must come, in order.
func TestIdleWaitAndPipelining(t *testing.T) {
	backend := sizedBackend(t, false)
	host, port, _ := net.SplitHostPort(backend)
	f := startVS(t, fmt.Sprintf("virtualServices:\n- {address: 127.0.0.2, port: %d, type: http, realServers: [{address: %s, port: %s}]}\n",
		testkit.FreePort(t, "127.0.0.2"), host, port))
	big := "X-Pad: " + strings.Repeat("p", 3*preReadSize) + "\r\n"
	req := func(n int, extra string) string {
		return fmt.Sprintf("GET /%d HTTP/1.1\r\nHost: www.example.com\r\n%s\r\n", n, extra)
	}
	for _, tc := range []struct {
		name   string
		pieces []string // written with a pause between them
		sizes  []int    // the answers expected, in order
	}{
		{"one", []string{req(3, "")}, []int{3}},
		{"pipelined", []string{req(1, "") + req(2, "") + req(3, "")}, []int{1, 2, 3}},
		{"head larger than the idle read", []string{req(4, big)}, []int{4}},
		{"pipelined after a large head", []string{req(5, big) + req(6, "") + req(7, big)}, []int{5, 6, 7}},
		{"head in pieces", []string{"GET /8 HT", "TP/1.1\r\nHost: www.exa", "mple.com\r\n", "\r\n"}, []int{8}},
		{"idle between requests", []string{req(9, ""), req(10, ""), req(11, big)}, []int{9, 10, 11}},
		{"large body then pipelined", []string{req(200000, "") + req(12, "")}, []int{200000, 12}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(c)
			got := 0
			for i, p := range tc.pieces {
				if i > 0 {
					time.Sleep(30 * time.Millisecond) // the proxy waits idle, or for the rest of the head
				}
				if _, err := io.WriteString(c, p); err != nil {
					t.Fatal(err)
				}
				if tc.name == "idle between requests" {
					got += readSized(t, br, tc.sizes[got])
				}
			}
			for got < len(tc.sizes) {
				got += readSized(t, br, tc.sizes[got])
			}
		})
	}
}

// readSized reads one response and checks it carries the n-byte pattern.
func readSized(t *testing.T, br *bufio.Reader, n int) int {
	t.Helper()
	resp := readResponse(t, br, "GET")
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if resp.StatusCode != 200 || !bytes.Equal(body, pattern(n)) {
		t.Fatalf("want %d pattern bytes, got status %d and %d bytes", n, resp.StatusCode, len(body))
	}
	return 1
}
