package l7

import (
	"bufio"
	"bytes"
	"io"
	"net/netip"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/l7/h1"
)

// browserRequest is a typical browser request head.
const browserRequest = "GET /shop/item.html?id=42&ref=home HTTP/1.1\r\nHost: www.example.com\r\n" +
	"User-Agent: Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0\r\n" +
	"Accept: text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8\r\n" +
	"Accept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate, br\r\n" +
	"X-Forwarded-For: 198.51.100.7\r\nCookie: session=0123456789abcdef; theme=dark\r\n" +
	"Connection: keep-alive\r\nUpgrade-Insecure-Requests: 1\r\n\r\n"

// rewriteConn is a clientConn holding browserRequest parsed, from client
// 203.0.113.9, as the proxy holds it when it forwards the head.
func rewriteConn(tb testing.TB) *clientConn {
	cs := newConnState(nil, nil, nil, true, netip.MustParseAddrPort("203.0.113.9:51234"), "", nil)
	cs.isTLS = false
	cc := &clientConn{connState: cs}
	if err := cc.req.ParseRequest([]byte(browserRequest), h1.Limits{MaxFields: DefaultMaxHeaders, MaxTarget: DefaultMaxURI}); err != nil {
		tb.Fatal(err)
	}
	cc.target = cc.req.Target
	cc.path, cc.query = splitTarget(cc.req.Target)
	cc.host = hostOnly(cc.req.Host)
	return cc
}

// TestWriteRequestHeadAllocs checks that forwarding a request head, in
// every forwarding-header mode, allocates nothing, and that the client's
// address is added.
func TestWriteRequestHeadAllocs(t *testing.T) {
	for _, tc := range []struct {
		name    string
		mode    string
		trusted bool
		want    string
	}{
		{"xff", "xff", false, "X-Forwarded-For: 203.0.113.9\r\n"},
		{"xff trusted", "xff", true, "X-Forwarded-For: 198.51.100.7, 203.0.113.9\r\n"},
		{"xff-via", "xff-via", false, "Via: 1.1 fulcrum\r\n"},
		{"clientside", "clientside", false, "X-ClientSide: 203.0.113.9\r\n"},
		{"none", "none", false, "Host: www.example.com\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cc := rewriteConn(t)
			st := &state{cfg: ServiceConfig{AddVia: tc.mode}}
			if tc.trusted {
				st.cfg.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("203.0.113.0/24")}
			}
			var out bytes.Buffer
			w := bufio.NewWriterSize(&out, 4096)
			writeRequestHead(w, cc, st, &Pool{})
			_ = w.Flush()
			if !bytes.Contains(out.Bytes(), []byte(tc.want)) {
				t.Errorf("forwarded head lacks %q:\n%s", tc.want, out.Bytes())
			}
			w.Reset(io.Discard)
			allocs := testing.AllocsPerRun(100, func() {
				writeRequestHead(w, cc, st, &Pool{})
				_ = w.Flush()
			})
			if allocs != 0 {
				t.Errorf("writeRequestHead allocates %.1f times, want 0", allocs)
			}
		})
	}
}

// BenchmarkWriteRequestHead measures forwarding a browser's request head
// (dropping hop-by-hop fields and untrusted forwarding headers, adding
// X-Forwarded-For and the framing) in each forwarding-header mode.
func BenchmarkWriteRequestHead(b *testing.B) {
	for _, mode := range []string{"xff", "xff-via", "none"} {
		b.Run(mode, func(b *testing.B) {
			cc := rewriteConn(b)
			st := &state{cfg: ServiceConfig{AddVia: mode}}
			pl := &Pool{}
			w := bufio.NewWriterSize(io.Discard, 4096)
			b.ReportAllocs()
			b.SetBytes(int64(len(browserRequest)))
			for b.Loop() {
				writeRequestHead(w, cc, st, pl)
				_ = w.Flush()
			}
		})
	}
}

// BenchmarkParseAndRewrite measures the whole head path of one request:
// find the end of the head, parse it strictly, split the target and write
// the forwarded head.
func BenchmarkParseAndRewrite(b *testing.B) {
	cc := rewriteConn(b)
	st := &state{cfg: ServiceConfig{AddVia: "xff"}}
	pl := &Pool{}
	lim := h1.Limits{MaxFields: DefaultMaxHeaders, MaxTarget: DefaultMaxURI}
	req := []byte(browserRequest)
	w := bufio.NewWriterSize(io.Discard, 4096)
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		n, _ := h1.HeadEnd(req, 0)
		if err := cc.req.ParseRequest(req[:n], lim); err != nil {
			b.Fatal(err)
		}
		cc.target = cc.req.Target
		cc.path, cc.query = splitTarget(cc.req.Target)
		cc.host = hostOnly(cc.req.Host)
		writeRequestHead(w, cc, st, pl)
		_ = w.Flush()
	}
}

// BenchmarkParseResponse measures parsing a real server's response head.
func BenchmarkParseResponse(b *testing.B) {
	resp := []byte("HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Mon, 30 Nov 2026 12:00:00 GMT\r\n" +
		"Content-Type: text/html; charset=utf-8\r\nContent-Length: 5120\r\nConnection: keep-alive\r\n" +
		"Cache-Control: max-age=60\r\nETag: \"5f3a-1a2b\"\r\n\r\n")
	var h h1.Head
	b.ReportAllocs()
	b.SetBytes(int64(len(resp)))
	for b.Loop() {
		if err := h.ParseResponse(resp, 200); err != nil {
			b.Fatal(err)
		}
	}
}
