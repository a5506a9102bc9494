package l7

import (
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Doc is an http2 service with TLS offload on a free port of 127.0.0.2
// with the given extra lines over the real servers at addrs.
func h2Doc(t *testing.T, extra string, addrs ...string) *fixture {
	t.Helper()
	root := testkit.NewCA(t, "Root")
	lc, lk := pemPair(root.Server(t, "h2.example.com", "127.0.0.2"))
	var rs []string
	for _, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		rs = append(rs, fmt.Sprintf("{address: %s, port: %s}", host, port))
	}
	return startVS(t, fmt.Sprintf("certificates:\n%s\nvirtualServices:\n- address: 127.0.0.2\n  port: %d\n  type: http2\n  tls: {offload: true, certificates: [c]}\n%s  realServers: [%s]\n",
		certYAML("c", lc, lk, false), testkit.FreePort(t, "127.0.0.2"), extra, strings.Join(rs, ", ")))
}

// h2Client is an HTTP/2-only client of f.
func h2Client(t *testing.T, f *fixture, timeout time.Duration) *http.Client {
	tr := &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true},
		DialTLSContext: func(ctx context.Context, network, _ string) (net.Conn, error) {
			d := tls.Dialer{Config: &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}}}
			return d.DialContext(ctx, network, f.addr)
		}}
	tr.Protocols = new(http.Protocols)
	tr.Protocols.SetHTTP2(true)
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr, Timeout: timeout}
}

// TestH2StalledUpload: an HTTP/2 upload that stops half-way is reset at the
// body timeout (2 s), not held for the idle timeout (30 s).
func TestH2StalledUpload(t *testing.T) {
	sink := startReal(t, "sink", "127.0.0.3", 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
	}), nil)
	f := h2Doc(t, "  idleTimeout: 30\n  http: {bodyTimeout: 2}\n", sink.addr)
	c, fr := h2Dial(t, f)
	defer c.Close()
	var buf strings.Builder
	e := hpack.NewEncoder(&stringsWriter{&buf})
	for _, h := range [][2]string{{":method", "POST"}, {":scheme", "https"}, {":authority", "h2.example.com"}, {":path", "/up"},
		{"content-length", "100000"}} {
		_ = e.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]})
	}
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: []byte(buf.String()), EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	if err := fr.WriteData(1, false, make([]byte, 1000)); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 1000 {
		fm, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %v: %v", time.Since(start), err)
		}
		if rst, ok := fm.(*http2.RSTStreamFrame); ok && rst.StreamID == 1 {
			break
		}
		if h, ok := fm.(*http2.HeadersFrame); ok && h.StreamID == 1 {
			break // an error answer ends the stream as well
		}
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("stalled upload ended after %v, want about the body timeout (2 s)", d)
	} else {
		t.Logf("stalled upload ended after %v", d.Round(time.Millisecond))
	}
}

type stringsWriter struct{ b *strings.Builder }

func (w *stringsWriter) Write(p []byte) (int, error) { return w.b.Write(p) }

// TestH2UploadServerNotReading: an HTTP/2 upload to a real server that
// never reads gets 504 at the body timeout, and the failure is counted.
func TestH2UploadServerNotReading(t *testing.T) {
	addr, _ := stallBackend(t, false)
	f := h2Doc(t, "  idleTimeout: 30\n  http: {bodyTimeout: 2}\n", addr)
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	srv := f.server(f.cfg.VirtualServices[0].ID, host, p)
	cl := h2Client(t, f, 30*time.Second)
	pr, pw := io.Pipe()
	go func() {
		buf := make([]byte, 1<<20)
		for range 64 {
			if _, err := pw.Write(buf); err != nil {
				return
			}
		}
		pw.Close()
	}()
	defer pr.Close()
	start := time.Now()
	req, _ := http.NewRequest("POST", "https://h2.example.com/up", pr)
	resp, err := cl.Do(req)
	d := time.Since(start)
	if err == nil {
		resp.Body.Close()
		if resp.StatusCode != 504 {
			t.Errorf("status %d, want 504", resp.StatusCode)
		}
	}
	if d > 8*time.Second {
		t.Fatalf("upload to a server that does not read ended after %v, want about 2 s", d)
	}
	waitFor(t, "the failure counted", func() bool { return srv.Failures() > 0 })
	t.Logf("ended after %v: %v", d.Round(time.Millisecond), err)
}

// TestH2ResponseTimeout: over HTTP/2 as over HTTP/1.1, a GET that a real
// server never answers is retried on another after the response timeout
// (the failure counted), a POST with a body gets 504.
func TestH2ResponseTimeout(t *testing.T) {
	silent, _ := stallBackend(t, true)
	good := startReal(t, "good", "127.0.0.4", 0, nil, nil)
	f := h2Doc(t, "  schedule: rr\n  idleTimeout: 30\n  http: {responseTimeout: 1}\n", silent, good.addr)
	host, port, _ := net.SplitHostPort(silent)
	p, _ := strconv.Atoi(port)
	srv := f.server(f.cfg.VirtualServices[0].ID, host, p)
	cl := h2Client(t, f, 20*time.Second)
	for i := range 4 {
		resp, err := cl.Get(fmt.Sprintf("https://h2.example.com/g%d", i))
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"server":"good"`) {
			t.Fatalf("GET %d: %d %.80q", i, resp.StatusCode, body)
		}
	}
	if srv.Failures() == 0 {
		t.Fatal("no failure counted on the silent server")
	}
	got504 := false
	for i := range 4 {
		start := time.Now()
		resp, err := cl.Post("https://h2.example.com/p", "text/plain", strings.NewReader("body"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == 504 {
			got504 = true
			if d := time.Since(start); d > 5*time.Second {
				t.Errorf("504 after %v, want about 1 s", d)
			}
			break
		}
		_ = i
	}
	if !got504 {
		t.Error("no POST reached the silent server and got 504")
	}
}

// TestH2UnderscoreForwarding: X_Forwarded_For and friends from an
// untrusted HTTP/2 client never reach the real server.
func TestH2UnderscoreForwarding(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	f := h2VS(t, "", a)
	cl := h2Client(t, f, 10*time.Second)
	req, _ := http.NewRequest("GET", "https://h2.example.com/", nil)
	req.Header.Set("X_Forwarded_For", "6.6.6.6")
	req.Header.Set("x_real_ip", "6.6.6.6")
	req.Header.Set("X-Forwarded-For", "6.6.6.6")
	resp, err := cl.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), "6.6.6.6") {
		t.Fatalf("a forged forwarding header reached the real server: %s", body)
	}
	if !strings.Contains(string(body), "X-Forwarded-For") {
		t.Fatalf("Fulcrum's own X-Forwarded-For missing: %s", body)
	}
}

// TestH2ClientStopsReading: a client that stops granting flow-control
// window in the middle of a large answer has the stream reset at the body
// timeout instead of holding the handler and the real server's connection.
func TestH2ClientStopsReading(t *testing.T) {
	big := strings.Repeat("x", 8<<20)
	a := startReal(t, "big", "127.0.0.3", 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, big)
	}), nil)
	f := h2Doc(t, "  idleTimeout: 30\n  http: {bodyTimeout: 2}\n", a.addr)
	c, fr := h2Dial(t, f)
	defer c.Close()
	if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: headerBlock("/big"), EndStream: true, EndHeaders: true}); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	for range 100000 {
		fm, err := fr.ReadFrame()
		if err != nil {
			t.Fatalf("after %v: %v", time.Since(start), err)
		}
		if rst, ok := fm.(*http2.RSTStreamFrame); ok && rst.StreamID == 1 {
			break
		}
		if d, ok := fm.(*http2.DataFrame); ok && d.StreamEnded() {
			t.Fatal("the whole answer came without any window granted")
		}
	}
	if d := time.Since(start); d > 8*time.Second {
		t.Fatalf("stream reset after %v, want about the body timeout (2 s)", d)
	} else {
		t.Logf("stream reset after %v", d.Round(time.Millisecond))
	}
}
