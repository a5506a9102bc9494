package l7

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2VS starts an http2 service with TLS offload over real server rs.
func h2VS(t *testing.T, extra string, rs *realServer) *fixture {
	t.Helper()
	root := testkit.NewCA(t, "Root")
	lc, lk := pemPair(root.Server(t, "h2.example.com", "127.0.0.2"))
	host, port, _ := strings.Cut(rs.addr, ":")
	return startVS(t, fmt.Sprintf(`
certificates:
%s
virtualServices:
- address: 127.0.0.2
  port: %d
  type: http2
  tls: {offload: true, certificates: [c]}
%s  realServers: [{address: %s, port: %s}]
`, certYAML("c", lc, lk, false), testkit.FreePort(t, "127.0.0.2"), extra, host, port))
}

// h2Dial opens an HTTP/2 connection with the client preface and SETTINGS
// sent, and returns its framer.
func h2Dial(t *testing.T, f *fixture) (*tls.Conn, *http2.Framer) {
	t.Helper()
	c, err := tls.Dial("tcp", f.addr, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}})
	if err != nil {
		t.Fatal(err)
	}
	if c.ConnectionState().NegotiatedProtocol != "h2" {
		t.Fatalf("ALPN %q", c.ConnectionState().NegotiatedProtocol)
	}
	t.Cleanup(func() { c.Close() })
	_ = c.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := io.WriteString(c, http2.ClientPreface); err != nil {
		t.Fatal(err)
	}
	fr := http2.NewFramer(c, c)
	if err := fr.WriteSettings(); err != nil {
		t.Fatal(err)
	}
	return c, fr
}

func headerBlock(path string) []byte {
	var buf bytes.Buffer
	e := hpack.NewEncoder(&buf)
	for _, f := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "h2.example.com"}, {":path", path}} {
		_ = e.WriteField(hpack.HeaderField{Name: f[0], Value: f[1]})
	}
	return buf.Bytes()
}

// TestH2ContinuationFlood: an endless header block split over
// CONTINUATION frames is cut off (CVE-2023-45288).
func TestH2ContinuationFlood(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	f := h2VS(t, "  http: {maxHeaderBytes: 8192}\n", a)
	c, fr := h2Dial(t, f)
	done := make(chan struct{})
	go func() {
		defer close(done)
		block := headerBlock("/")
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: true}); err != nil {
			return
		}
		var lit bytes.Buffer
		e := hpack.NewEncoder(&lit)
		_ = e.WriteField(hpack.HeaderField{Name: "x-flood", Value: strings.Repeat("a", 1000)})
		for i := 0; i < 20000; i++ { // 20 MB if never stopped
			if err := fr.WriteContinuation(1, false, lit.Bytes()); err != nil {
				return
			}
		}
	}()
	ga := goAwayOf(t, fr)
	c.Close()
	<-done
	if a.requests.Load() != 0 {
		t.Error("the flooded request reached the real server")
	}
	if ga == nil || ga.ErrCode != http2.ErrCodeEnhanceYourCalm {
		t.Errorf("GOAWAY %+v, want ENHANCE_YOUR_CALM", ga)
	}
}

// TestH2RapidReset: streams opened and reset at once are bounded by the
// stream limit at the real server, and a connection that abandons most of
// its streams is closed (CVE-2023-44487).
func TestH2RapidReset(t *testing.T) {
	var inflight, peak atomic.Int64
	a := startReal(t, "slow", "127.0.0.3", 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n := inflight.Add(1)
		defer inflight.Add(-1)
		for {
			p := peak.Load()
			if n <= p || peak.CompareAndSwap(p, n) {
				break
			}
		}
		select {
		case <-r.Context().Done():
		case <-time.After(20 * time.Millisecond):
		}
	}), nil)
	f := h2VS(t, "  http: {maxStreams: 10}\n", a)
	c, fr := h2Dial(t, f)
	block := headerBlock("/reset")
	closed := make(chan struct{})
	go func() {
		defer close(closed)
		for range 1000000 {
			if _, err := fr.ReadFrame(); err != nil {
				return
			}
		}
	}()
	sent := 0
	for id := uint32(1); id < 2*20000; id += 2 {
		if fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true}) != nil {
			break
		}
		if fr.WriteRSTStream(id, http2.ErrCodeCancel) != nil {
			break
		}
		sent++
	}
	select {
	case <-closed:
	case <-time.After(15 * time.Second):
		t.Fatalf("connection still open after %d reset streams", sent)
	}
	c.Close()
	if p := peak.Load(); p > 10 {
		t.Errorf("%d requests in flight at the real server, limit 10", p)
	}
	t.Logf("%d streams opened and reset before the connection was closed; peak in flight %d", sent, peak.Load())
}

// TestH2PingFlood: PINGs sent without reading the answers fill the
// server's control-frame queue and the connection is closed.
func TestH2PingFlood(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	f := h2VS(t, "", a)
	c, fr := h2Dial(t, f)
	var data [8]byte
	var err error
	deadline := time.Now().Add(15 * time.Second)
	n := 0
	for ; n < 5000000 && err == nil && time.Now().Before(deadline); n++ {
		err = fr.WritePing(false, data)
	}
	c.Close()
	if err == nil {
		t.Fatalf("%d PINGs written without reading an answer and the connection is still open", n)
	}
	t.Logf("connection closed after %d unanswered PINGs: %v", n, err)
}

// TestH2AuthorityWins: with both :authority and a Host header, the real
// server sees :authority (HAProxy h2_desync_attacks).
func TestH2AuthorityWins(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	f := h2VS(t, "", a)
	_, fr := h2Dial(t, f)
	var buf bytes.Buffer
	e := hpack.NewEncoder(&buf)
	for _, h := range [][2]string{{":method", "GET"}, {":scheme", "https"}, {":authority", "good.example"}, {":path", "/"}, {"host", "evil.example"}} {
		_ = e.WriteField(hpack.HeaderField{Name: h[0], Value: h[1]})
	}
	_ = fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: buf.Bytes(), EndStream: true, EndHeaders: true})
	var body bytes.Buffer
	for range 1000 {
		fm, err := fr.ReadFrame()
		if err != nil {
			t.Fatal(err)
		}
		if d, ok := fm.(*http2.DataFrame); ok {
			body.Write(d.Data())
			if d.StreamEnded() {
				break
			}
		}
		if h, ok := fm.(*http2.HeadersFrame); ok && h.StreamEnded() {
			break
		}
		if r, ok := fm.(*http2.RSTStreamFrame); ok {
			t.Logf("stream refused: %v", r.ErrCode)
			break
		}
		if g, ok := fm.(*http2.GoAwayFrame); ok {
			t.Logf("connection refused: %v", g.ErrCode)
			break
		}
		if s, ok := fm.(*http2.SettingsFrame); ok && !s.IsAck() {
			_ = fr.WriteSettingsAck()
		}
	}
	if strings.Contains(body.String(), "evil.example") || (body.Len() > 0 && !strings.Contains(body.String(), `"host":"good.example"`)) {
		t.Errorf("real server saw %s", body.String())
	}
}

// TestH2Spec runs h2spec (built from its Go module) against an HTTPS
// service; every test must pass. Outside CI it is skipped when the module
// cannot be fetched.
func TestH2Spec(t *testing.T) {
	if testing.Short() {
		t.Skip("h2spec is slow")
	}
	bin := h2specBinary(t)
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	f := h2VS(t, "", a)
	_, port, _ := strings.Cut(f.addr, ":")
	cmd := exec.Command(bin, "-t", "-k", "-h", "127.0.0.2", "-p", port, "-o", "2")
	out, err := cmd.CombinedOutput()
	s := string(out)
	summary := s
	if i := strings.LastIndex(s, "Finished in"); i >= 0 {
		summary = s[i:]
	}
	t.Logf("h2spec: %s", strings.TrimSpace(summary))
	if err != nil || !strings.Contains(s, " 0 failed") {
		t.Fatalf("h2spec failed (%v):\n%s", err, s)
	}
}

// h2specVersion is the pinned h2spec module version.
const h2specVersion = "v2.2.1+incompatible"

// h2specBinary builds h2spec into the test's temp dir.
func h2specBinary(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	bin := dir + "/h2spec"
	cmd := exec.Command("go", "install", "github.com/summerwind/h2spec/cmd/h2spec@"+h2specVersion)
	cmd.Env = append(os.Environ(), "GOBIN="+dir, "GOFLAGS=-mod=mod")
	out, err := cmd.CombinedOutput()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("cannot build h2spec: %v\n%s", err, out)
		}
		t.Skipf("cannot build h2spec: %v\n%s", err, out)
	}
	return bin
}

// TestH2ServerKilledMidStream: over HTTP/2 a truncated response resets the
// stream, so the client sees an error, not a short body.
func TestH2ServerKilledMidStream(t *testing.T) {
	a := startReal(t, "dying", "127.0.0.3", 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Length", "100000")
		_, _ = w.Write([]byte(strings.Repeat("x", 5000)))
		w.(http.Flusher).Flush()
		if c, _, err := http.NewResponseController(w).Hijack(); err == nil {
			c.Close()
		}
	}), nil)
	f := h2VS(t, "", a)
	resp, err := h2Client(t, f, 10*time.Second).Get("https://h2.example.com/")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	n, err := io.Copy(io.Discard, resp.Body)
	if resp.ProtoMajor != 2 || err == nil || n >= 100000 {
		t.Fatalf("%s: read %d bytes, err %v: a truncated body must end in an error", resp.Proto, n, err)
	}
}
