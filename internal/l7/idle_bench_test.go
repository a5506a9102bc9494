package l7

import (
	"bufio"
	"bytes"
	"crypto/tls"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"runtime/debug"
	"runtime/metrics"
	"runtime/pprof"
	"strconv"
	"strings"
	"testing"
	"time"
)

var idleConns = flag.Int("idleconns", 10000, "client connections held open by BenchmarkIdleConnMemory")

// idleClientEnv carries the client's job (address, count, tls) to the
// helper process started by BenchmarkIdleConnMemory.
const idleClientEnv = "FULCRUM_L7_IDLE_CLIENT"

// TestIdleClientHelper is not a test: it is the client process of
// BenchmarkIdleConnMemory, kept apart so that the proxy's memory is
// measured without the client's. It opens the connections, makes one
// request on each, prints "ready" and holds them until stdin closes.
func TestIdleClientHelper(t *testing.T) {
	job := os.Getenv(idleClientEnv)
	if job == "" {
		t.Skip("only run by BenchmarkIdleConnMemory")
	}
	parts := strings.Split(job, ",")
	if len(parts) != 3 {
		t.Fatalf("bad job %q", job)
	}
	n, err := strconv.Atoi(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	useTLS := parts[2] == "tls"
	conns := make([]net.Conn, 0, n)
	defer func() {
		for _, c := range conns {
			_ = c.Close()
		}
	}()
	req := []byte("GET /index.html HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: idle\r\nAccept: */*\r\n\r\n")
	buf := make([]byte, 4096)
	tcfg := &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}}
	for range n {
		var c net.Conn
		if useTLS {
			c, err = tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", parts[0], tcfg)
		} else {
			c, err = net.DialTimeout("tcp", parts[0], 5*time.Second)
		}
		if err != nil {
			t.Fatalf("connection %d: %v", len(conns), err)
		}
		conns = append(conns, c)
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		if _, err := c.Write(req); err != nil {
			t.Fatal(err)
		}
		// The fixed response of rawBackend ends with its 13-byte body.
		got := 0
		for !bytes.HasSuffix(buf[:got], []byte("Hello, world!")) {
			k, err := c.Read(buf[got:])
			if err != nil {
				t.Fatalf("connection %d: %v after %q", len(conns), err, buf[:got])
			}
			got += k
		}
		_ = c.SetDeadline(time.Time{})
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin)
}

// memNow is the process's memory after a collection: resident set,
// live heap objects and goroutine stacks, in bytes.
type memNow struct{ rss, heap, stacks float64 }

func readMem(collect bool) memNow {
	if collect {
		for range 4 { // each collection may halve a goroutine's stack
			runtime.GC()
		}
		debug.FreeOSMemory()
	}
	s := []metrics.Sample{{Name: "/memory/classes/heap/objects:bytes"}, {Name: "/memory/classes/heap/stacks:bytes"}}
	metrics.Read(s)
	m := memNow{heap: float64(s[0].Value.Uint64()), stacks: float64(s[1].Value.Uint64())}
	if b, err := os.ReadFile("/proc/self/status"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
				kb, _ := strconv.Atoi(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")))
				m.rss = float64(kb) * 1024
			}
		}
	}
	return m
}

// BenchmarkIdleConnMemory measures what an idle keep-alive client
// connection that has made one request costs the proxy: -idleconns
// connections (10,000 by default) are opened by a separate client process
// (this test binary re-run as TestIdleClientHelper), each makes one
// request through a real proxy to a real server, and the proxy process's
// resident set, live heap and goroutine stacks are compared before and
// after. Run it once: go test -run '^$' -bench IdleConnMemory -benchtime 1x.
// Metrics: rss-B/conn as the process grows on its own (no forced
// collection), and after a forced collection rss-gc-B/conn, heap-B/conn and
// stack-B/conn. With FULCRUM_IDLE_HEAPPROFILE=dir it writes the heap profile
// of the idle state to dir/idle-heap-{plain,tls}.pprof.
func BenchmarkIdleConnMemory(b *testing.B) {
	for _, mode := range []string{"plain", "tls"} {
		b.Run(mode, func(b *testing.B) { idleMemory(b, mode == "tls") })
	}
}

func idleMemory(b *testing.B, useTLS bool) {
	f := benchVS(b, useTLS)
	n := *idleConns
	// Warm up: one connection and request, so the upstream connection and
	// pools exist before the baseline.
	warm(b, f.addr, useTLS)
	before := readMem(true)
	before0 := readMem(false)
	mode := "plain"
	if useTLS {
		mode = "tls"
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestIdleClientHelper$", "-test.v=false")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s,%d,%s", idleClientEnv, f.addr, n, mode))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		b.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		b.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		b.Fatal(err)
	}
	defer func() {
		_ = stdin.Close()
		_ = cmd.Wait()
	}()
	ready := make(chan error, 1)
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if sc.Text() == "ready" {
				ready <- nil
				_, _ = io.Copy(io.Discard, stdout)
				return
			}
		}
		ready <- fmt.Errorf("client ended before it was ready: %v", sc.Err())
	}()
	select {
	case err := <-ready:
		if err != nil {
			b.Fatal(err)
		}
	case <-time.After(3 * time.Minute):
		b.Fatal("client not ready in 3 minutes")
	}
	if a := f.proxy.Active(); a < n {
		b.Fatalf("proxy holds %d connections, want %d", a, n)
	}
	time.Sleep(200 * time.Millisecond) // let every connection goroutine park
	after0 := readMem(false)
	after := readMem(true)
	if dir := os.Getenv("FULCRUM_IDLE_HEAPPROFILE"); dir != "" {
		// The heap while the connections are idle, for go tool pprof.
		if f, err := os.Create(filepath.Join(dir, "idle-heap-"+mode+".pprof")); err == nil {
			_ = pprof.Lookup("heap").WriteTo(f, 0)
			_ = f.Close()
		}
	}
	per := func(a, z float64) float64 { return (a - z) / float64(n) }
	b.ReportMetric(per(after0.rss, before0.rss), "rss-B/conn")
	b.ReportMetric(per(after.rss, before.rss), "rss-gc-B/conn")
	b.ReportMetric(per(after.heap, before.heap), "heap-B/conn")
	b.ReportMetric(per(after.stacks, before.stacks), "stack-B/conn")
}

func warm(b *testing.B, addr string, useTLS bool) {
	var c net.Conn
	var err error
	if useTLS {
		c, err = tls.Dial("tcp", addr, &tls.Config{InsecureSkipVerify: true})
	} else {
		c, err = net.Dial("tcp", addr)
	}
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("GET / HTTP/1.1\r\nHost: w\r\nConnection: close\r\n\r\n")); err != nil {
		b.Fatal(err)
	}
	if _, err := io.Copy(io.Discard, c); err != nil {
		b.Fatal(err)
	}
}
