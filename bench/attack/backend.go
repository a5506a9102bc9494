package attack

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Mode is how a Backend treats the connections it accepts.
type Mode string

// The backend modes.
const (
	// ModeHTTP answers HTTP/1.1 requests (see Backend for the paths).
	ModeHTTP Mode = "http"
	// ModeReset accepts a connection and resets it at once (RST).
	ModeReset Mode = "reset"
	// ModeHang accepts a connection and never reads from it nor answers.
	ModeHang Mode = "hang"
	// ModeEcho echoes every byte back (a layer-4 real server).
	ModeEcho Mode = "echo"
)

// holdLimit bounds how long a backend holds a connection it never
// answers (ModeHang, /hang, /noread).
const holdLimit = 5 * time.Minute

// Backend is a real server on 127.0.0.0/8. In ModeHTTP it parses requests
// strictly with net/http's reader, counts those it could and could not
// parse, and answers by path:
//
//	/slow?ms=N    after N milliseconds (at most 60 s)
//	/bytes?n=N    with N bytes (at most 1 GiB)
//	/echo         with the request head it received as the body
//	/noread       never: it reads the head and stops reading
//	/hang         never: it reads the head and holds the connection
//	anything else with "ok\n" after reading the whole body
type Backend struct {
	ln   net.Listener
	mode Mode
	done chan struct{}
	wg   sync.WaitGroup

	mu      sync.Mutex
	conns   map[net.Conn]struct{}
	paths   map[string]int
	headers map[string]bool

	accepted  atomic.Int64
	active    atomic.Int64
	requests  atomic.Int64
	malformed atomic.Int64
	inBody    atomic.Int64
}

// maxPaths bounds the per-path request log.
const maxPaths = 100000

// StartBackend listens on addr ("127.0.0.1:0" for any port) and serves
// in mode until Close.
func StartBackend(addr string, mode Mode) (*Backend, error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("backend %s: %w", addr, err)
	}
	b := &Backend{ln: ln, mode: mode, done: make(chan struct{}), conns: map[net.Conn]struct{}{}, paths: map[string]int{}, headers: map[string]bool{}}
	b.wg.Add(1)
	go b.accept()
	return b, nil
}

// Addr is the backend's listening address.
func (b *Backend) Addr() string { return b.ln.Addr().String() }

// Port is the backend's listening port.
func (b *Backend) Port() int { return b.ln.Addr().(*net.TCPAddr).Port }

// BackendStats are a backend's counters.
type BackendStats struct {
	// Accepted counts connections accepted; Active those open now.
	Accepted int64 `json:"accepted"`
	Active   int64 `json:"active"`
	// Requests counts requests parsed; Malformed connections whose bytes
	// could not be parsed as a request.
	Requests  int64 `json:"requests"`
	Malformed int64 `json:"malformed"`
	// InBody is the number of requests whose body is being read now.
	InBody int64 `json:"in_body"`
}

// Stats returns the counters.
func (b *Backend) Stats() BackendStats {
	return BackendStats{Accepted: b.accepted.Load(), Active: b.active.Load(), Requests: b.requests.Load(),
		Malformed: b.malformed.Load(), InBody: b.inBody.Load()}
}

// Seen returns how many parsed requests had a target containing s.
func (b *Backend) Seen(s string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	n := 0
	for p, c := range b.paths {
		if strings.Contains(p, s) {
			n += c
		}
	}
	return n
}

// SawHeader reports whether any request carried a header field named
// name (in net/http's canonical form, e.g. "X_forwarded_for").
func (b *Backend) SawHeader(name string) bool {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.headers[name]
}

// Close stops the backend and closes every connection it holds.
func (b *Backend) Close() {
	select {
	case <-b.done:
		return
	default:
	}
	close(b.done)
	_ = b.ln.Close()
	b.mu.Lock()
	for c := range b.conns {
		_ = c.Close()
	}
	b.mu.Unlock()
	b.wg.Wait()
}

func (b *Backend) accept() {
	defer b.wg.Done()
	for {
		c, err := b.ln.Accept()
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			select {
			case <-b.done:
				return
			default:
			}
			time.Sleep(10 * time.Millisecond) // EMFILE and friends
			continue
		}
		b.accepted.Add(1)
		if b.mode == ModeReset {
			if tc, ok := c.(*net.TCPConn); ok {
				_ = tc.SetLinger(0)
			}
			_ = c.Close()
			continue
		}
		b.mu.Lock()
		b.conns[c] = struct{}{}
		b.mu.Unlock()
		b.active.Add(1)
		b.wg.Add(1)
		go func() {
			defer b.wg.Done()
			defer func() {
				b.mu.Lock()
				delete(b.conns, c)
				b.mu.Unlock()
				b.active.Add(-1)
				_ = c.Close()
			}()
			switch b.mode {
			case ModeHang:
				b.hold()
			case ModeEcho:
				_, _ = io.Copy(c, c)
			default:
				b.serveHTTP(c)
			}
		}()
	}
}

// hold waits until the backend closes or holdLimit passes.
func (b *Backend) hold() {
	select {
	case <-b.done:
	case <-time.After(holdLimit):
	}
}

func (b *Backend) serveHTTP(c net.Conn) {
	br := bufio.NewReaderSize(c, 64<<10)
	bw := bufio.NewWriterSize(c, 64<<10)
	for {
		req, err := http.ReadRequest(br)
		if err != nil {
			if !errors.Is(err, io.EOF) && !isClosed(err) {
				b.malformed.Add(1)
				_, _ = io.WriteString(c, "HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
			}
			return
		}
		b.requests.Add(1)
		b.mu.Lock()
		if len(b.paths) < maxPaths {
			b.paths[req.RequestURI]++
		}
		for k := range req.Header {
			if len(b.headers) < maxPaths {
				b.headers[k] = true
			}
		}
		b.mu.Unlock()
		path := req.URL.Path
		switch path {
		case "/noread", "/hang":
			b.hold()
			return
		}
		b.inBody.Add(1)
		_, err = io.Copy(io.Discard, req.Body)
		b.inBody.Add(-1)
		if err != nil {
			return
		}
		var body []byte
		var n int64
		switch path {
		case "/slow":
			ms, _ := strconv.Atoi(req.URL.Query().Get("ms"))
			select {
			case <-time.After(time.Duration(min(max(ms, 0), 60000)) * time.Millisecond):
			case <-b.done:
				return
			}
			body = []byte("ok\n")
		case "/bytes":
			n, _ = strconv.ParseInt(req.URL.Query().Get("n"), 10, 64)
			n = min(max(n, 0), 1<<30)
		case "/echo":
			var sb strings.Builder
			fmt.Fprintf(&sb, "%s %s %s\n", req.Method, req.RequestURI, req.Proto)
			fmt.Fprintf(&sb, "Host: %s\n", req.Host)
			_ = req.Header.Write(&sb)
			body = []byte(sb.String())
		default:
			body = []byte("ok\n")
		}
		if body != nil {
			n = int64(len(body))
		}
		fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: %d\r\n", n)
		if req.Close {
			bw.WriteString("Connection: close\r\n")
		}
		bw.WriteString("\r\n")
		if body != nil {
			bw.Write(body)
		} else if err := writeZeros(bw, n); err != nil {
			return
		}
		if err := bw.Flush(); err != nil || req.Close {
			return
		}
	}
}

var zeros = make([]byte, 32<<10)

func writeZeros(w io.Writer, n int64) error {
	for n > 0 {
		k := min(n, int64(len(zeros)))
		if _, err := w.Write(zeros[:k]); err != nil {
			return err
		}
		n -= k
	}
	return nil
}

func isClosed(err error) bool {
	return errors.Is(err, net.ErrClosed) || errors.Is(err, io.ErrUnexpectedEOF) ||
		strings.Contains(err.Error(), "connection reset")
}

// UDPEcho is a UDP real server that sends every datagram back.
type UDPEcho struct {
	pc       net.PacketConn
	received atomic.Int64
	done     chan struct{}
}

// StartUDPEcho listens on addr and echoes until Close.
func StartUDPEcho(addr string) (*UDPEcho, error) {
	pc, err := net.ListenPacket("udp", addr)
	if err != nil {
		return nil, fmt.Errorf("udp echo %s: %w", addr, err)
	}
	u := &UDPEcho{pc: pc, done: make(chan struct{})}
	go func() {
		defer close(u.done)
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				if errors.Is(err, net.ErrClosed) {
					return
				}
				continue
			}
			u.received.Add(1)
			_, _ = pc.WriteTo(buf[:n], from)
		}
	}()
	return u, nil
}

// Port is the echo server's port.
func (u *UDPEcho) Port() int { return u.pc.LocalAddr().(*net.UDPAddr).Port }

// Received counts the datagrams received.
func (u *UDPEcho) Received() int64 { return u.received.Load() }

// Close stops the server.
func (u *UDPEcho) Close() {
	_ = u.pc.Close()
	<-u.done
}
