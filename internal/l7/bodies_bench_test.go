package l7

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"strconv"
	"strings"
	"testing"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// chunkedBackend is a keep-alive real server that reads a chunked request
// body whole and answers its size, or answers "GET /N" with N bytes in
// 64 KiB chunks.
func chunkedBackend(b *testing.B) string {
	chunk := append(fmt.Appendf(nil, "%x\r\n", 64<<10), append(pattern(64<<10), "\r\n"...)...)
	addr, stop := serveConns(b, func(c net.Conn) {
		br := bufio.NewReaderSize(c, 64<<10)
		bw := bufio.NewWriterSize(c, 64<<10)
		for {
			line, err := br.ReadString('\n')
			if err != nil {
				return
			}
			chunked := false
			for {
				l, err := br.ReadSlice('\n')
				if err != nil {
					return
				}
				if len(l) <= 2 {
					break
				}
				chunked = chunked || strings.HasPrefix(strings.ToLower(string(l)), "transfer-encoding: chunked")
			}
			var n int64
			if chunked {
				for {
					sl, err := br.ReadString('\n')
					if err != nil {
						return
					}
					size, _ := strconv.ParseInt(strings.TrimSpace(sl), 16, 64)
					if _, err := br.Discard(int(size) + 2); err != nil {
						return
					}
					n += size
					if size == 0 {
						break
					}
				}
				fmt.Fprintf(bw, "HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%d", len(strconv.FormatInt(n, 10)), n)
			} else {
				n, _ = strconv.ParseInt(strings.TrimPrefix(strings.Fields(line)[1], "/"), 10, 64)
				bw.WriteString("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
				for left := n; left > 0; left -= 64 << 10 {
					bw.Write(chunk)
				}
				bw.WriteString("0\r\n\r\n")
			}
			if bw.Flush() != nil {
				return
			}
		}
	})
	b.Cleanup(stop)
	return addr
}

// BenchmarkBodyCopy moves 8 MiB chunked bodies through the proxy's copy
// path (chunked bodies are decoded and re-encoded, never spliced), up and
// down, on one keep-alive connection: the path whose reads and writes are
// timed for http.bodyMinRate.
func BenchmarkBodyCopy(b *testing.B) { benchBodyCopy(b, false) }

// BenchmarkBodyCopyCapped is BenchmarkBodyCopy with a bandwidth and a
// throughput cap configured but not reached: what shaping costs.
func BenchmarkBodyCopyCapped(b *testing.B) { benchBodyCopy(b, true) }

func benchBodyCopy(b *testing.B, capped bool) {
	const size = 8 << 20
	host, port, _ := net.SplitHostPort(chunkedBackend(b))
	f := startVS(b, fmt.Sprintf("virtualServices:\n- {address: 127.0.0.2, port: %d, type: http, realServers: [{address: %s, port: %s}]}\n",
		testkit.FreePort(b, "127.0.0.2"), host, port))
	if capped {
		capNotReached(b, f)
	}
	chunk := append(fmt.Appendf(nil, "%x\r\n", 64<<10), append(pattern(64<<10), "\r\n"...)...)
	for _, dir := range []string{"up", "down"} {
		b.Run(dir, func(b *testing.B) {
			c, err := net.Dial("tcp", f.addr)
			if err != nil {
				b.Fatal(err)
			}
			defer c.Close()
			br := bufio.NewReaderSize(c, 64<<10)
			bw := bufio.NewWriterSize(c, 64<<10)
			b.SetBytes(size)
			b.ReportAllocs()
			for b.Loop() {
				if dir == "up" {
					bw.WriteString("POST /up HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n")
					for range size / (64 << 10) {
						bw.Write(chunk)
					}
					bw.WriteString("0\r\n\r\n")
				} else {
					fmt.Fprintf(bw, "GET /%d HTTP/1.1\r\nHost: x\r\n\r\n", size)
				}
				if err := bw.Flush(); err != nil {
					b.Fatal(err)
				}
				resp := readResponse(b, br, "GET")
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode != 200 {
					b.Fatalf("status %d", resp.StatusCode)
				}
			}
		})
	}
}
