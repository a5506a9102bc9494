package l7

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// tcpPair returns the two ends of a real TCP connection on 127.0.0.1.
// rcvbuf, when not zero, is set on the listener (so the accepted end gets
// it before the handshake).
func tcpPair(t *testing.T, rcvbuf int) (client *net.TCPConn, server *net.TCPConn) {
	t.Helper()
	lc := net.ListenConfig{}
	if rcvbuf > 0 {
		lc.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, rcvbuf)
			})
			if err != nil {
				return err
			}
			return serr
		}
	}
	ln, err := lc.Listen(t.Context(), "tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = c.Close(); _ = s.Close() })
	return c.(*net.TCPConn), s.(*net.TCPConn)
}

// TestUpIOHeldWrite drives upIO, the source and destination of a
// connection to a real server, over real sockets: the request held by
// flush is written inside the read of the answer, and every way that can
// go (a write that would block, an answer that came first, a server that
// closed, one that never answers) ends with the right bytes or error.
func TestUpIOHeldWrite(t *testing.T) {
	for _, tc := range []struct {
		name    string
		reqSize int
		sndbuf  int  // on the proxy's end; 0: default
		rcvbuf  int  // on the server's end; 0: default
		slow    bool // the server reads in small pieces with pauses
		early   string
		close   bool // the server closes after the early bytes
		silent  bool // the server never answers
		want    string
		wantErr error
	}{
		{name: "small request", reqSize: 100, want: "answer"},
		{name: "write would block: tiny buffers, slow reader", reqSize: 512 << 10, sndbuf: 4096, rcvbuf: 4096, slow: true, want: "answer"},
		{name: "server answered early", reqSize: 100, early: "early;", want: "early;answer"},
		{name: "server answered early and closed", reqSize: 100, early: "early;", close: true},
		{name: "server silent: read deadline", reqSize: 100, silent: true, wantErr: os.ErrDeadlineExceeded},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, s := tcpPair(t, tc.rcvbuf)
			if tc.sndbuf > 0 {
				if err := c.SetWriteBuffer(tc.sndbuf); err != nil {
					t.Fatal(err)
				}
			}
			req := pattern(tc.reqSize)
			got := make(chan []byte, 1)
			arrived := make(chan struct{})
			go func() {
				_ = s.SetDeadline(time.Now().Add(20 * time.Second))
				if tc.early != "" {
					_, _ = io.WriteString(s, tc.early)
				}
				close(arrived)
				if tc.close {
					_ = s.Close()
					got <- nil
					return
				}
				buf := make([]byte, 0, len(req))
				piece := make([]byte, 64<<10)
				if tc.slow {
					piece = piece[:4096]
				}
				for len(buf) < len(req) {
					n, err := s.Read(piece)
					buf = append(buf, piece[:n]...)
					if err != nil {
						break
					}
					if tc.slow && len(buf) < 64<<10 {
						time.Sleep(time.Millisecond) // the proxy's write blocks meanwhile
					}
				}
				got <- buf
				if !tc.silent {
					_, _ = io.WriteString(s, "answer")
				}
			}()
			<-arrived
			if tc.early != "" {
				time.Sleep(50 * time.Millisecond) // let the early bytes reach the proxy's socket first
			}
			u := &upConn{c: c, raw: c}
			u.io.init(c, c)
			if u.io.rc == nil {
				t.Fatal("no raw connection for plain TCP")
			}
			u.bw = bufio.NewWriterSize(&u.io, len(req)+1)
			u.br = bufio.NewReaderSize(&u.io, upBufSize)
			_ = c.SetReadDeadline(time.Now().Add(10 * time.Second))
			if tc.silent {
				_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
			}
			_, _ = u.bw.Write(req)
			if err := u.flushLast(); err != nil {
				t.Fatal(err)
			}
			if len(u.io.pending) != len(req) {
				t.Fatalf("held %d bytes, want %d", len(u.io.pending), len(req))
			}
			var out []byte
			var err error
			for len(out) < len(tc.want) || tc.want == "" {
				var b [64]byte
				var n int
				n, err = u.br.Read(b[:])
				out = append(out, b[:n]...)
				if err != nil {
					break
				}
			}
			switch {
			case tc.wantErr != nil:
				if !errors.Is(err, tc.wantErr) {
					t.Fatalf("error %v, want %v", err, tc.wantErr)
				}
			case tc.close:
				if errors.Is(err, os.ErrDeadlineExceeded) {
					t.Fatalf("waited for the deadline on a closed connection (read %q)", out)
				}
			default:
				if err != nil || string(out) != tc.want {
					t.Fatalf("read %q, %v; want %q", out, err, tc.want)
				}
			}
			if !tc.close {
				if b := <-got; !bytes.Equal(b, req) {
					t.Fatalf("server got %d bytes, not the %d of the request", len(b), len(req))
				}
			}
			if len(u.io.pending) != 0 {
				t.Fatalf("%d bytes still held", len(u.io.pending))
			}
		})
	}
}

// delayBackend answers GET /<n>?delay=<ms> with n pattern bytes after the
// delay, and GET /<n>?chunked with them in one chunk.
func delayBackend(t *testing.T) string {
	t.Helper()
	addr, stop := serveConns(t, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(30 * time.Second))
		br := bufio.NewReader(c)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			for {
				l, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(l) <= 2 {
					break
				}
			}
			f := strings.Fields(line)
			target := strings.TrimPrefix(f[1], "/")
			path, query, _ := strings.Cut(target, "?")
			n, _ := strconv.Atoi(path)
			if d, ok := strings.CutPrefix(query, "delay="); ok {
				ms, _ := strconv.Atoi(d)
				time.Sleep(time.Duration(ms) * time.Millisecond)
			}
			if query == "chunked" { // not spliced by the proxy, whatever the size
				out := fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n%x\r\n", n)
				out = append(out, pattern(n)...)
				if _, err := c.Write(append(out, "\r\n0\r\n\r\n"...)); err != nil {
					return
				}
				continue
			}
			out := fmt.Appendf(nil, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n", n)
			if _, err := c.Write(append(out, pattern(n)...)); err != nil {
				return
			}
		}
	})
	t.Cleanup(stop)
	return addr
}

// TestAwaitWritesResponseEnd covers the end of a response written by the
// wait for the next request on plain connections: a pipelined request that
// arrived before that wait began, a client too slow to take the response
// at once, a client that half-closes after its request, and the idle
// timeout.
func TestAwaitWritesResponseEnd(t *testing.T) {
	backend := delayBackend(t)
	host, port, _ := net.SplitHostPort(backend)
	f := startVS(t, fmt.Sprintf("virtualServices:\n- {address: 127.0.0.2, port: %d, type: http, realServers: [{address: %s, port: %s}]}\n",
		testkit.FreePort(t, "127.0.0.2"), host, port))
	req := func(target string) string {
		return "GET /" + target + " HTTP/1.1\r\nHost: www.example.com\r\n\r\n"
	}
	type step struct {
		write string
		pause time.Duration // before the write
		read  []int         // answers read after the write
	}
	for _, tc := range []struct {
		name      string
		rcvbuf    int // on the client's end, and as SO_SNDBUF on the proxy's (inherited from its listener)
		halfClose bool
		steps     []step
	}{
		{name: "one at a time", steps: []step{{write: req("10"), read: []int{10}}, {write: req("20"), read: []int{20}}}},
		{name: "pipelined request arrives while the first is served", steps: []step{
			{write: req("11?delay=150")},
			{pause: 50 * time.Millisecond, write: req("12"), read: []int{11, 12}},
			{write: req("13"), read: []int{13}},
			{write: req("14") + req("15"), read: []int{14, 15}},
		}},
		{name: "slow reader with a tiny buffer", rcvbuf: 4096, steps: []step{
			{write: req("4000000?chunked")},
			{pause: 200 * time.Millisecond, read: []int{4000000}},
			{write: req("7000"), read: []int{7000}},
		}},
		{name: "half-close after the request", halfClose: true, steps: []step{{write: req("16"), read: []int{16}}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			d := net.Dialer{}
			if tc.rcvbuf > 0 {
				rc, err := f.ln.(*net.TCPListener).SyscallConn()
				if err != nil {
					t.Fatal(err)
				}
				_ = rc.Control(func(fd uintptr) {
					_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_SNDBUF, tc.rcvbuf)
				})
				d.Control = func(_, _ string, rc syscall.RawConn) error {
					return rc.Control(func(fd uintptr) {
						_ = syscall.SetsockoptInt(int(fd), syscall.SOL_SOCKET, syscall.SO_RCVBUF, tc.rcvbuf)
					})
				}
			}
			conn, err := d.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			c := conn.(*net.TCPConn)
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(20 * time.Second))
			br := bufio.NewReader(c)
			for _, s := range tc.steps {
				time.Sleep(s.pause)
				if s.write != "" {
					if _, err := io.WriteString(c, s.write); err != nil {
						t.Fatal(err)
					}
				}
				if tc.halfClose {
					_ = c.CloseWrite()
				}
				for _, n := range s.read {
					readSized(t, br, n)
				}
			}
			if tc.halfClose {
				rest, err := io.ReadAll(br)
				if err != nil || len(rest) != 0 {
					t.Fatalf("after the answer: %q, %v; want the proxy to close", rest, err)
				}
			}
		})
	}

	t.Run("idle timeout", func(t *testing.T) {
		for _, idle := range []time.Duration{100 * time.Millisecond, 500 * time.Millisecond} { // without and with the skipped read
			cfg := f.svc.Config()
			cfg.IdleTimeout = idle
			if err := f.svc.Update(cfg); err != nil {
				t.Fatal(err)
			}
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				t.Fatal(err)
			}
			_ = c.SetDeadline(time.Now().Add(10 * time.Second))
			br := bufio.NewReader(c)
			if _, err := io.WriteString(c, req("17")); err != nil {
				t.Fatal(err)
			}
			readSized(t, br, 17)
			rest, err := io.ReadAll(br) // the proxy closes the idle connection
			_ = c.Close()
			if err != nil || len(rest) != 0 {
				t.Fatalf("idle %v: %q, %v; want the proxy to close", idle, rest, err)
			}
		}
	})
}

// TestUpstreamHalfClosedWhileIdle: a real server that half-closes a kept
// connection while it is idle (sends its FIN) but goes on reading must not
// leave the next request waiting for an answer that never comes: the
// request of a reused connection is written inside the wait for its answer,
// which cannot see a FIN that came earlier, so the pool tests connections
// idle for longer than upstreamPeekAfter and dials afresh.
func TestUpstreamHalfClosedWhileIdle(t *testing.T) {
	var conns atomic.Int32
	addr, stop := serveConns(t, func(c net.Conn) {
		first := conns.Add(1) == 1
		_ = c.SetDeadline(time.Now().Add(20 * time.Second))
		br := bufio.NewReader(c)
		for {
			req, err := http.ReadRequest(br)
			if err != nil {
				return
			}
			_, _ = io.Copy(io.Discard, req.Body)
			if _, err := io.WriteString(c, "HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"); err != nil {
				return
			}
			if first {
				_ = c.(*net.TCPConn).CloseWrite()
				_, _ = io.Copy(io.Discard, br) // reads on, never answers
				return
			}
		}
	})
	t.Cleanup(stop)
	host, port, _ := net.SplitHostPort(addr)
	f := startVS(t, fmt.Sprintf("virtualServices:\n- {address: 127.0.0.2, port: %d, type: http, realServers: [{address: %s, port: %s}]}\n",
		testkit.FreePort(t, "127.0.0.2"), host, port))
	c, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	br := bufio.NewReader(c)
	for i := range 2 {
		if i == 1 {
			time.Sleep(upstreamPeekAfter + 300*time.Millisecond) // the server half-closes meanwhile
		}
		fmt.Fprintf(c, "GET /%d HTTP/1.1\r\nHost: www.example.com\r\n\r\n", i)
		resp := readResponse(t, br, "GET")
		body, err := io.ReadAll(resp.Body)
		if err != nil {
			t.Fatalf("request %d: %v", i, err)
		}
		if resp.StatusCode != 200 || string(body) != "ok" {
			t.Fatalf("request %d: %d %q, want 200 \"ok\"", i, resp.StatusCode, body)
		}
	}
	if n := conns.Load(); n != 2 {
		t.Fatalf("the real server saw %d connections, want 2 (the half-closed one replaced)", n)
	}
}
