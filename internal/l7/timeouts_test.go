package l7

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// stallBackend is a real server on 127.0.0.3 that accepts connections and
// then does nothing with them until the test ends: with read, it first
// reads one request head (so that the request was received, and is never
// answered); without, it reads nothing at all.
func stallBackend(t *testing.T, read bool) (addr string, conns func() int) {
	t.Helper()
	done := make(chan struct{})
	var mu sync.Mutex
	n := 0
	addr, stop := serveConns(t, func(c net.Conn) {
		mu.Lock()
		n++
		mu.Unlock()
		if read {
			br := bufio.NewReader(c)
			for {
				l, err := br.ReadSlice('\n')
				if err != nil || len(l) <= 2 {
					break
				}
			}
		}
		<-done
	})
	t.Cleanup(stop)
	t.Cleanup(func() { close(done) }) // runs first: the handlers return, then stop waits for them
	return addr, func() int { mu.Lock(); defer mu.Unlock(); return n }
}

// vsDoc is a plain-HTTP service on a free port of 127.0.0.2 with the given
// extra service lines (indented by two spaces) over the real servers at
// addrs.
func vsDoc(t *testing.T, extra string, addrs ...string) string {
	t.Helper()
	var rs []string
	for _, a := range addrs {
		host, port, _ := net.SplitHostPort(a)
		rs = append(rs, fmt.Sprintf("{address: %s, port: %s}", host, port))
	}
	return fmt.Sprintf("virtualServices:\n- address: 127.0.0.2\n  port: %d\n  type: http\n%s  realServers: [%s]\n",
		testkit.FreePort(t, "127.0.0.2"), extra, strings.Join(rs, ", "))
}

// TestBodyTimeoutServerNotReading: an upload to a real server that accepts
// the connection and never reads is cut at the body timeout (2 s), not at
// the idle timeout (30 s), whether the body is copied (chunked) or spliced
// (a large Content-Length between plain connections), and the failure is
// counted on the real server.
func TestBodyTimeoutServerNotReading(t *testing.T) {
	addr, _ := stallBackend(t, false)
	f := startVS(t, vsDoc(t, "  idleTimeout: 30\n  http: {bodyTimeout: 2}\n", addr))
	host, port, _ := net.SplitHostPort(addr)
	p, _ := strconv.Atoi(port)
	srv := f.server(f.cfg.VirtualServices[0].ID, host, p)
	const size = 64 << 20 // more than every socket buffer on the way holds
	for _, chunked := range []bool{true, false} {
		name := map[bool]string{true: "chunked", false: "content-length"}[chunked]
		t.Run(name, func(t *testing.T) {
			before := srv.Failures()
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(40 * time.Second))
			start := time.Now()
			wrote := make(chan struct{})
			go func() {
				defer close(wrote)
				if chunked {
					fmt.Fprint(c, "POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
					piece := append(fmt.Appendf(nil, "%x\r\n", 64<<10), append(pattern(64<<10), "\r\n"...)...)
					for range size / (64 << 10) {
						if _, err := c.Write(piece); err != nil {
							return
						}
					}
					return
				}
				fmt.Fprintf(c, "POST /up HTTP/1.1\r\nHost: x\r\nContent-Length: %d\r\n\r\n", size)
				buf := pattern(1 << 20)
				for range size / len(buf) {
					if _, err := c.Write(buf); err != nil {
						return
					}
				}
			}()
			out, _ := io.ReadAll(c) // the answer (504) or a reset; either way the end
			elapsed := time.Since(start)
			_ = c.Close()
			<-wrote
			if elapsed > 8*time.Second {
				t.Fatalf("upload to a server that does not read ended after %v, want about the body timeout (2 s)", elapsed.Round(time.Millisecond))
			}
			if len(out) > 0 && !strings.HasPrefix(string(out), "HTTP/1.1 504 ") {
				t.Errorf("client got %.60q, want a 504 or nothing", out)
			}
			waitFor(t, "the failure counted", func() bool { return srv.Failures() > before })
			t.Logf("cut after %v", elapsed.Round(time.Millisecond))
		})
	}
}

// TestSlowPost: a request body trickled one byte a second is cut a little
// after the body timeout (2 s) when the minimum rate (100 B/s) is not
// met, copied or spliced; the real server's connection is closed too. An
// upload at full speed, or paced above the minimum for longer than the
// body timeout, is unaffected.
func TestSlowPost(t *testing.T) {
	var got sync.Map // path → bytes received
	sink := startReal(t, "sink", "127.0.0.3", 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		n, err := io.Copy(io.Discard, r.Body)
		got.Store(r.URL.Path, n)
		if err != nil {
			return
		}
		fmt.Fprintf(w, "%d", n)
	}), nil)
	f := startVS(t, vsDoc(t, "  idleTimeout: 30\n  http: {bodyTimeout: 2, bodyMinRate: 100}\n", sink.addr))

	for _, tc := range []struct {
		name, head string
	}{
		{"content-length", "POST /slow-cl HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n"},
		{"chunked", "POST /slow-chunked HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"},
		{"spliced", "POST /slow-spliced HTTP/1.1\r\nHost: x\r\nContent-Length: 1048576\r\n\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if _, err := io.WriteString(c, tc.head); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			closed := make(chan time.Duration, 1)
			go func() {
				_ = c.SetReadDeadline(time.Now().Add(20 * time.Second))
				_, _ = io.ReadAll(c)
				closed <- time.Since(start)
			}()
			one := []byte("x")
			if strings.Contains(tc.head, "chunked") {
				one = []byte("1\r\nx\r\n")
			}
			var elapsed time.Duration
		trickle:
			for {
				_, _ = c.Write(one)
				select {
				case elapsed = <-closed:
					break trickle
				case <-time.After(time.Second):
				}
			}
			if elapsed < 1500*time.Millisecond || elapsed > 6*time.Second {
				t.Fatalf("a body at 1 B/s was cut after %v, want a little after the body timeout (2 s)", elapsed.Round(time.Millisecond))
			}
			t.Logf("cut after %v", elapsed.Round(time.Millisecond))
		})
	}

	cl := f.client(nil)
	for _, tc := range []struct {
		name   string
		chunk  int
		pieces int
		pause  time.Duration
		length bool
	}{
		{"full speed, content-length", 1 << 20, 8, 0, true},
		{"full speed, chunked", 1 << 20, 8, 0, false},
		{"paced over 3 s, chunked", 8 << 10, 12, 250 * time.Millisecond, false},
		{"paced over 3 s, content-length", 8 << 10, 12, 250 * time.Millisecond, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			pr, pw := io.Pipe()
			go func() {
				for range tc.pieces {
					if _, err := pw.Write(pattern(tc.chunk)); err != nil {
						return
					}
					time.Sleep(tc.pause)
				}
				_ = pw.Close()
			}()
			path := "/" + strings.ReplaceAll(tc.name, " ", "")
			req, _ := http.NewRequest("POST", "http://x"+path, pr)
			total := int64(tc.chunk * tc.pieces)
			if tc.length {
				req.ContentLength = total
			}
			resp, err := cl.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 || string(body) != strconv.FormatInt(total, 10) {
				t.Fatalf("upload: %d %q, want 200 %d", resp.StatusCode, body, total)
			}
		})
	}
}

// TestSlowReader: a client that reads a large response a few bytes a
// second is cut a little after the body timeout once the socket buffers
// are full, whether the body is copied (chunked) or spliced; a client that
// reads at full speed gets all of it.
func TestSlowReader(t *testing.T) {
	const size = 64 << 20
	big := startReal(t, "big", "127.0.0.3", 0, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		buf := pattern(1 << 20)
		if r.URL.Path == "/length" {
			w.Header().Set("Content-Length", strconv.Itoa(size))
		}
		for range size / len(buf) {
			if _, err := w.Write(buf); err != nil {
				return
			}
		}
	}), nil)
	f := startVS(t, vsDoc(t, "  idleTimeout: 30\n  http: {bodyTimeout: 2, bodyMinRate: 100}\n", big.addr))
	// A client with a small receive buffer, so that the proxy's writes
	// block soon.
	d := net.Dialer{Control: func(_, _ string, rc syscall.RawConn) error {
		var serr error
		err := rc.Control(func(fd uintptr) { serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, 4096) })
		if err != nil {
			return err
		}
		return serr
	}}
	for _, path := range []string{"/chunked", "/length"} {
		t.Run(path[1:], func(t *testing.T) {
			waitFor(t, "no client connection left", func() bool { return f.proxy.Active() == 0 })
			c, err := d.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\n\r\n", path)
			start := time.Now()
			waitFor(t, "the proxy serving the client", func() bool { return f.proxy.Active() == 1 })
			buf := make([]byte, 10)
			for f.proxy.Active() > 0 && time.Since(start) < 20*time.Second {
				_ = c.SetReadDeadline(time.Now().Add(time.Second))
				_, _ = c.Read(buf)
				time.Sleep(time.Second)
			}
			elapsed := time.Since(start)
			if elapsed > 8*time.Second {
				t.Fatalf("a client reading 10 B/s was still served after %v, want it cut a little after the body timeout (2 s)", elapsed.Round(time.Millisecond))
			}
			t.Logf("cut after %v", elapsed.Round(time.Millisecond))
		})
	}
	t.Run("full speed", func(t *testing.T) {
		cl := f.client(nil)
		for _, path := range []string{"/chunked", "/length"} {
			resp, err := cl.Get("http://x" + path)
			if err != nil {
				t.Fatal(err)
			}
			n, err := io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if err != nil || n != size {
				t.Fatalf("%s: read %d bytes, %v; want %d", path, n, err, size)
			}
		}
	})
}

// TestResponseTimeout: with a response timeout of 1 s, one real server that
// takes requests and never answers and one good one, GETs are answered by
// the good one (retried there, the failure counted on the silent one); a
// POST with a body that reaches the silent one gets 504 after about 1 s,
// is sent only once, and the keep-alive connection carries on, also after
// it was idle longer than the body timeout.
func TestResponseTimeout(t *testing.T) {
	silent, silentConns := stallBackend(t, true)
	good := startReal(t, "good", "127.0.0.4", 0, nil, nil)
	f := startVS(t, "options: {alwaysPersist: \"yes\"}\n"+vsDoc(t, "  schedule: rr\n  idleTimeout: 30\n  http: {responseTimeout: 1, bodyTimeout: 1}\n", silent, good.addr))
	host, port, _ := net.SplitHostPort(silent)
	p, _ := strconv.Atoi(port)
	srv := f.server(f.cfg.VirtualServices[0].ID, host, p)

	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(40 * time.Second))
	br := bufio.NewReader(c)
	slow := 0
	for i := range 4 {
		start := time.Now()
		fmt.Fprintf(c, "GET /g%d HTTP/1.1\r\nHost: x\r\n\r\n", i)
		resp := readResponse(t, br, "GET")
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `"server":"good"`) {
			t.Fatalf("GET %d: %d %.80q, want 200 from the good server", i, resp.StatusCode, body)
		}
		if time.Since(start) > 900*time.Millisecond {
			slow++
		}
	}
	if slow == 0 || srv.Failures() == 0 || silentConns() == 0 {
		t.Fatalf("retry path not exercised or not counted: %d slow GETs, %d failures on the silent server, %d connections to it", slow, srv.Failures(), silentConns())
	}

	got504 := false
	for i := range 4 {
		if i >= 2 {
			time.Sleep(1500 * time.Millisecond) // idle past the body timeout: the 504 must still be written
		}
		before := silentConns()
		start := time.Now()
		fmt.Fprintf(c, "POST /p%d HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\n\r\nonce", i)
		resp := readResponse(t, br, "POST")
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		elapsed := time.Since(start)
		switch resp.StatusCode {
		case 200:
		case 504:
			got504 = true
			if elapsed < 900*time.Millisecond || elapsed > 5*time.Second {
				t.Errorf("POST %d: 504 after %v, want about the response timeout (1 s)", i, elapsed.Round(time.Millisecond))
			}
			if n := silentConns() - before; n != 1 {
				t.Errorf("POST %d: sent %d times to the silent server, want once (never retried)", i, n)
			}
		default:
			t.Fatalf("POST %d: status %d", i, resp.StatusCode)
		}
	}
	if !got504 {
		t.Fatal("no POST reached the silent server")
	}
}

func TestBodyClock(t *testing.T) {
	const s = time.Second
	for _, tt := range []struct {
		name   string
		waited time.Duration
		moved  int64
		rate   int64
		want   time.Duration
	}{
		{"start", 0, 0, 500, 60 * s},
		{"fast", 10 * s, 1 << 20, 500, 60 * s},
		{"1 B per 59 s", 59 * s, 1, 500, s + 2*time.Millisecond},
		{"too slow", 120 * s, 500, 500, -59 * s},
		{"no minimum", 3600 * s, 1, -1, 60 * s},
		{"huge credit", 3600 * s, 1 << 40, 1, 60 * s},
	} {
		k := bodyClock{waited: tt.waited, moved: tt.moved}
		if got := k.allow(60*s, tt.rate); got != tt.want {
			t.Errorf("%s: allow = %v, want %v", tt.name, got, tt.want)
		}
	}
	var k bodyClock
	k.add(2*s, 100)
	k.add(s, 50)
	if k.waited != 3*s || k.moved != 150 {
		t.Errorf("add: %+v", k)
	}
}

// TestBuildTimeouts: the http settings reach the service, with their
// defaults: bodyMinRate 0 is 500 B/s and -1 none, responseTimeout 0 is
// the idle timeout.
func TestBuildTimeouts(t *testing.T) {
	a := startReal(t, "a", "127.0.0.3", 0, nil, nil)
	for _, tt := range []struct {
		extra string
		rate  int64
		resp  time.Duration
	}{
		{"  idleTimeout: 30\n", DefaultBodyMinRate, 30 * time.Second},
		{"", DefaultBodyMinRate, DefaultIdleTimeout},
		{"  idleTimeout: 30\n  http: {bodyMinRate: -1, responseTimeout: 7}\n", -1, 7 * time.Second},
		{"  http: {bodyMinRate: 2000}\n", 2000, DefaultIdleTimeout},
	} {
		f := startVS(t, vsDoc(t, tt.extra, a.addr))
		cfg := f.svc.Config()
		if cfg.BodyMinRate != tt.rate || cfg.ResponseTimeout != tt.resp {
			t.Errorf("%q: bodyMinRate %d, responseTimeout %v; want %d, %v", tt.extra, cfg.BodyMinRate, cfg.ResponseTimeout, tt.rate, tt.resp)
		}
	}
}
