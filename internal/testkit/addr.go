package testkit

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Listen opens a TCP listener on ip (a 127.x address) and a free port,
// closed when the test ends.
func Listen(t testing.TB, ip string) net.Listener {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("testkit: listen on %s: %v", ip, err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	return ln
}

// ListenAt opens a TCP listener on exactly addr ("ip:port"), retrying for
// up to two seconds while the port is still being released (a server the
// test just stopped), and closes it when the test ends.
func ListenAt(t testing.TB, addr string) net.Listener {
	t.Helper()
	var ln net.Listener
	var err error
	deadline := time.Now().Add(2 * time.Second)
	for pause := minPoll; ; pause = min(2*pause, maxPoll) {
		if ln, err = net.Listen("tcp", addr); err == nil {
			t.Cleanup(func() { _ = ln.Close() })
			return ln
		}
		if !errors.Is(err, syscall.EADDRINUSE) || time.Now().After(deadline) {
			t.Fatalf("testkit: listen on %s: %v", addr, err)
			return nil
		}
		time.Sleep(pause)
	}
}

// FreePort returns a TCP port that was free on ip a moment ago: nothing
// listens on it when FreePort returns.
func FreePort(t testing.TB, ip string) int {
	t.Helper()
	return FreePorts(t, ip, 1)[0]
}

// FreePorts returns n distinct TCP ports that were free on ip a moment
// ago (all held open together while they are chosen, so none repeats).
func FreePorts(t testing.TB, ip string, n int) []int {
	t.Helper()
	ports := make([]int, 0, n)
	lns := make([]net.Listener, 0, n)
	defer func() {
		for _, ln := range lns {
			_ = ln.Close()
		}
	}()
	for range n {
		ln, err := net.Listen("tcp", net.JoinHostPort(ip, "0"))
		if err != nil {
			t.Fatalf("testkit: free port on %s: %v", ip, err)
			return nil
		}
		lns = append(lns, ln)
		ports = append(ports, ln.Addr().(*net.TCPAddr).Port)
	}
	return ports
}

// FreeAddr returns "ip:port" with a TCP port that was free on ip a moment
// ago: an address where nothing listens (connections are refused).
func FreeAddr(t testing.TB, ip string) string {
	t.Helper()
	return net.JoinHostPort(ip, fmt.Sprint(FreePort(t, ip)))
}

// FreeUDPPort returns a UDP port that was free on ip a moment ago.
func FreeUDPPort(t testing.TB, ip string) int {
	t.Helper()
	pc, err := net.ListenPacket("udp", net.JoinHostPort(ip, "0"))
	if err != nil {
		t.Fatalf("testkit: free UDP port on %s: %v", ip, err)
		return 0
	}
	defer pc.Close()
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// loopback hands out distinct addresses of 127.0.0.0/8.
var loopback struct {
	mu   sync.Mutex
	next int
}

// LoopbackAddrs returns n distinct 127.x.y.z addresses, none returned
// before in this process and none in 127.0.0.0/16 (where tests pick fixed
// addresses). The second octet comes from the process ID, so test binaries
// running side by side are unlikely to share one. Linux answers on all of
// 127.0.0.0/8 without configuration.
func LoopbackAddrs(n int) []string {
	loopback.mu.Lock()
	defer loopback.mu.Unlock()
	second := 100 + os.Getpid()%100
	out := make([]string, 0, n)
	for len(out) < n {
		i := loopback.next
		loopback.next++
		third, fourth := (i/254)%256, i%254+1 // 1..254: no .0 or .255
		out = append(out, fmt.Sprintf("127.%d.%d.%d", second, third, fourth))
	}
	return out
}

// LoopbackAddr returns one address of LoopbackAddrs.
func LoopbackAddr() string { return LoopbackAddrs(1)[0] }
