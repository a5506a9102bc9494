package l4

import (
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/accesslog"
	"github.com/fulcrum-lb/fulcrum/internal/backend"
	"github.com/fulcrum-lb/fulcrum/internal/balance"
	"github.com/fulcrum-lb/fulcrum/internal/config"
)

// roundTrips sends size-byte requests over c and reads size-byte answers
// from an echo server, b.N times.
func roundTrips(b *testing.B, c net.Conn, size int) {
	req, resp := make([]byte, size), make([]byte, size)
	b.SetBytes(int64(2 * size))
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, resp); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkRoundTrip is a small request/response over a kept connection,
// through the proxy and, for reference, straight to the echo server.
func BenchmarkRoundTrip(b *testing.B) {
	be := serve(b, echo)
	b.Run("proxy", func(b *testing.B) {
		f := startFront(b, "rr", time.Minute, rs(be.Port()))
		c := f.dial(b)
		defer c.Close()
		_ = c.SetDeadline(time.Time{})
		roundTrips(b, c, 64)
	})
	b.Run("direct", func(b *testing.B) {
		c, err := net.Dial("tcp", be.Addr())
		if err != nil {
			b.Fatal(err)
		}
		defer c.Close()
		roundTrips(b, c, 64)
	})
}

// BenchmarkConnect is a whole connection through the proxy: connect, one
// 64-byte round trip, close.
func BenchmarkConnect(b *testing.B) {
	for _, logged := range []bool{false, true} {
		b.Run(map[bool]string{false: "plain", true: "accesslog"}[logged], func(b *testing.B) { benchConnect(b, logged) })
	}
}

// benchConnect: with logged, the service writes an access log line (JSON,
// to a file) per connection.
func benchConnect(b *testing.B, logged bool) {
	be := serve(b, echo)
	cfg := ServiceConfig{Name: "bench", VSName: "bench", IdleTimeout: time.Minute}
	picker, err := balance.New("rr", []*backend.Server{rs(be.Port())})
	if err != nil {
		b.Fatal(err)
	}
	cfg.Picker = picker
	if logged {
		w := accesslog.New(accesslog.Options{})
		b.Cleanup(func() { _ = w.Close() })
		if err := w.Configure(config.AccessLog{File: filepath.Join(b.TempDir(), "access.log"), Format: "json"}, nil); err != nil {
			b.Fatal(err)
		}
		cfg.AccessLog = w
	}
	f := startFrontCfg(b, nil, cfg)
	buf := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		c := f.dial(b)
		if _, err := c.Write(buf); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			b.Fatal(err)
		}
		c.Close()
	}
}

// BenchmarkThroughput streams 1 MiB per op one way through the proxy to a
// server that discards it.
func BenchmarkThroughput(b *testing.B) {
	be := serve(b, answerAfterEOF)
	f := startFront(b, "rr", time.Minute, rs(be.Port()))
	c := f.dial(b)
	defer c.Close()
	_ = c.SetDeadline(time.Time{})
	chunk := make([]byte, 1<<20)
	b.SetBytes(int64(len(chunk)))
	b.ResetTimer()
	for range b.N {
		if _, err := c.Write(chunk); err != nil {
			b.Fatal(err)
		}
	}
	_ = c.CloseWrite()
	if _, err := io.ReadAll(c); err != nil { // the server's answer: all bytes arrived
		b.Fatal(err)
	}
}

// tcpPair returns the two ends of a loopback TCP connection.
func tcpPair(b *testing.B) (*net.TCPConn, *net.TCPConn) {
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		b.Fatal(err)
	}
	defer ln.Close()
	c, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		b.Fatal(err)
	}
	s, err := ln.AcceptTCP()
	if err != nil {
		b.Fatal(err)
	}
	return c, s
}

// BenchmarkCopy compares, outside the proxy, the two ways an idle timeout
// can be kept: io.Copy between *net.TCPConn (splice on Linux; the proxy's
// way, with activity read from the kernel) against a user-space loop that
// pushes a read deadline forward on every read.
func BenchmarkCopy(b *testing.B) {
	for _, tc := range []struct {
		name string
		copy func(dst, src *net.TCPConn) (int64, error)
	}{
		{"splice", func(dst, src *net.TCPConn) (int64, error) { return io.Copy(dst, src) }},
		{"deadline-per-read", func(dst, src *net.TCPConn) (int64, error) {
			buf := make([]byte, 32<<10)
			var n int64
			for {
				_ = src.SetReadDeadline(time.Now().Add(time.Minute))
				r, err := src.Read(buf)
				if r > 0 {
					w, werr := dst.Write(buf[:r])
					n += int64(w)
					if werr != nil {
						return n, werr
					}
				}
				if err == io.EOF {
					return n, nil
				}
				if err != nil {
					return n, err
				}
			}
		}},
	} {
		b.Run(tc.name, func(b *testing.B) {
			inW, inR := tcpPair(b)   // writer → relay
			outW, outR := tcpPair(b) // relay → reader
			done := make(chan int64, 2)
			go func() {
				n, _ := tc.copy(outW, inR)
				_ = outW.CloseWrite()
				done <- n
			}()
			go func() {
				n, _ := io.Copy(io.Discard, outR)
				done <- n
			}()
			chunk := make([]byte, 1<<20)
			b.SetBytes(int64(len(chunk)))
			b.ResetTimer()
			for range b.N {
				if _, err := inW.Write(chunk); err != nil {
					b.Fatal(err)
				}
			}
			_ = inW.CloseWrite()
			<-done
			<-done
			b.StopTimer()
			for _, c := range []*net.TCPConn{inW, inR, outW, outR} {
				c.Close()
			}
		})
	}
}

// BenchmarkSinceActivity is the cost of one idle check of one socket (the
// watchdog makes two per connection per idle period).
func BenchmarkSinceActivity(b *testing.B) {
	c, s := tcpPair(b)
	defer c.Close()
	defer s.Close()
	b.ReportAllocs()
	for range b.N {
		if _, err := sinceActivity(c); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkCopySmall is the copy loop alone (copyAdaptive both ways
// between two loopback connections, as pipe runs it) under 64-byte
// request/response traffic: one op is one round trip through the relay.
func BenchmarkCopySmall(b *testing.B) {
	client, relayIn := tcpPair(b)  // client ↔ relay's client side
	relayOut, server := tcpPair(b) // relay's server side ↔ server
	done := make(chan struct{}, 2)
	go func() { _, _ = copyAdaptive(relayOut, relayIn); _ = relayOut.CloseWrite(); done <- struct{}{} }()
	go func() { _, _ = copyAdaptive(relayIn, relayOut); _ = relayIn.CloseWrite(); done <- struct{}{} }()
	go func() { _, _ = io.Copy(server, server) }() // echo
	req, resp := make([]byte, 64), make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := client.Write(req); err != nil {
			b.Fatal(err)
		}
		if _, err := io.ReadFull(client, resp); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	_ = client.CloseWrite()
	<-done
	_ = server.CloseWrite()
	<-done
	for _, c := range []*net.TCPConn{client, relayIn, relayOut, server} {
		c.Close()
	}
}
