package l7

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"strconv"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// rawBackend is a minimal keep-alive HTTP/1.1 real server that answers
// every request with a fixed small response, allocating nothing per
// request, so that a benchmark measures the proxy.
func rawBackend(b *testing.B) (addr string, stop func()) {
	resp := []byte("HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: 13\r\n\r\nHello, world!")
	return serveConns(b, func(c net.Conn) {
		br := bufio.NewReader(c)
		for {
			// Read one head (GET, no body).
			for {
				line, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(line) <= 2 {
					break
				}
			}
			if _, err := c.Write(resp); err != nil {
				return
			}
		}
	})
}

// benchClient sends keep-alive GETs on c and reads the responses,
// allocating nothing per request.
func benchRequests(b *testing.B, c net.Conn) {
	req := []byte("GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: bench\r\nAccept: */*\r\n\r\n")
	br := bufio.NewReaderSize(c, 4096)
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		cl := -1
		for {
			line, err := br.ReadSlice('\n')
			if err != nil {
				b.Fatal(err)
			}
			if len(line) <= 2 {
				break
			}
			if len(line) > 16 && bytes.EqualFold(line[:15], []byte("Content-Length:")) {
				cl, _ = strconv.Atoi(string(bytes.TrimSpace(line[15:])))
			}
		}
		if cl < 0 {
			b.Fatal("no Content-Length")
		}
		if _, err := br.Discard(cl); err != nil {
			b.Fatal(err)
		}
	}
}

func benchVS(b *testing.B, tlsOn bool) *fixture {
	addr, stop := rawBackend(b)
	b.Cleanup(stop)
	host, port, _ := net.SplitHostPort(addr)
	doc := fmt.Sprintf("virtualServices:\n- {address: 127.0.0.2, port: %d, type: http, realServers: [{address: %s, port: %s}]}\n",
		testkit.FreePort(b, "127.0.0.2"), host, port)
	if tlsOn {
		root := testkit.NewCA(b, "Root")
		lc, lk := pemPair(root.Server(b, "www.example.com"))
		doc = fmt.Sprintf("certificates:\n%s", certYAML("c", lc, lk, false)) +
			fmt.Sprintf("virtualServices:\n- {address: 127.0.0.2, port: %d, type: http, tls: {offload: true, certificates: [c]}, realServers: [{address: %s, port: %s}]}\n",
				testkit.FreePort(b, "127.0.0.2"), host, port)
	}
	return startVS(b, doc)
}

// BenchmarkProxyKeepAlive measures one small keep-alive request through
// the proxy (client, proxy and real server all in this process; the
// client and real server allocate nothing per request).
func BenchmarkProxyKeepAlive(b *testing.B) {
	f := benchVS(b, false)
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	benchRequests(b, c)
}

// BenchmarkProxyKeepAliveTLS is the same over TLS offload.
func BenchmarkProxyKeepAliveTLS(b *testing.B) {
	f := benchVS(b, true)
	c, err := tls.Dial("tcp", f.addr, &tls.Config{InsecureSkipVerify: true})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	benchRequests(b, c)
}

var _ = io.Discard
