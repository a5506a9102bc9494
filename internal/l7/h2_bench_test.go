package l7

import (
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// BenchmarkProxyH2 measures one small GET over a kept HTTP/2 connection
// through the proxy (TLS offload, real server over HTTP/1.1 keep-alive).
// The client is net/http's HTTP/2 transport, which allocates per request:
// the figure is for comparing versions of the proxy, not absolute.
func BenchmarkProxyH2(b *testing.B) {
	addr, stop := rawBackend(b)
	b.Cleanup(stop)
	host, port, _ := net.SplitHostPort(addr)
	root := testkit.NewCA(b, "Root")
	lc, lk := pemPair(root.Server(b, "www.example.com"))
	doc := fmt.Sprintf("certificates:\n%s", certYAML("c", lc, lk, false)) +
		fmt.Sprintf("virtualServices:\n- {address: 127.0.0.2, port: %d, type: http2, tls: {offload: true, certificates: [c]}, realServers: [{address: %s, port: %s}]}\n",
			testkit.FreePort(b, "127.0.0.2"), host, port)
	f := startVS(b, doc)
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}, ForceAttemptHTTP2: true}
	b.Cleanup(tr.CloseIdleConnections)
	req, err := http.NewRequest("GET", "https://"+f.addr+"/index.html", nil)
	if err != nil {
		b.Fatal(err)
	}
	req.Host = "www.example.com"
	get := func() {
		resp, err := tr.RoundTrip(req)
		if err != nil {
			b.Fatal(err)
		}
		if resp.ProtoMajor != 2 {
			b.Fatalf("answered over %s", resp.Proto)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	get() // the connection
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		get()
	}
}
