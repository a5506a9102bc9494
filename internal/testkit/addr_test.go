package testkit

import (
	"errors"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestFreePorts(t *testing.T) {
	ports := FreePorts(t, "127.0.0.1", 20)
	seen := map[int]bool{}
	for _, p := range ports {
		if p <= 0 || p > 65535 || seen[p] {
			t.Fatalf("ports %v: %d is out of range or repeated", ports, p)
		}
		seen[p] = true
	}
	// Each is free: listening on it works.
	for _, p := range ports[:3] {
		ln := ListenAt(t, net.JoinHostPort("127.0.0.1", itoa(p)))
		ln.Close()
	}
	if p := FreePort(t, "127.0.0.2"); p <= 0 {
		t.Errorf("FreePort = %d", p)
	}
	if p := FreeUDPPort(t, "127.0.0.2"); p <= 0 {
		t.Errorf("FreeUDPPort = %d", p)
	}
}

func TestFreeAddrRefuses(t *testing.T) {
	addr := FreeAddr(t, "127.0.0.3")
	if !strings.HasPrefix(addr, "127.0.0.3:") {
		t.Fatalf("FreeAddr = %q", addr)
	}
	_, err := net.DialTimeout("tcp", addr, 2*time.Second)
	if !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("dial %s: %v, want connection refused", addr, err)
	}
}

func TestListenAtReusesAPort(t *testing.T) {
	ln := Listen(t, "127.0.0.4")
	addr := ln.Addr().String()
	// An accepted and closed connection leaves the port in TIME_WAIT on
	// the server side: ListenAt still gets it (SO_REUSEADDR).
	srv := ServeTCP(t, ln, func(net.Conn) {})
	c, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	_, _ = c.Read(make([]byte, 1))
	c.Close()
	srv.Close()
	again := ListenAt(t, addr)
	if again.Addr().String() != addr {
		t.Errorf("ListenAt(%s) listens on %s", addr, again.Addr())
	}
}

func TestLoopbackAddrs(t *testing.T) {
	addrs := LoopbackAddrs(300)
	addrs = append(addrs, LoopbackAddr())
	seen := map[string]bool{}
	for _, a := range addrs {
		ip := net.ParseIP(a)
		if ip == nil || !ip.IsLoopback() || strings.HasPrefix(a, "127.0.") || strings.HasSuffix(a, ".0") || strings.HasSuffix(a, ".255") || seen[a] {
			t.Fatalf("address %q: not a usable, distinct loopback address outside 127.0/16", a)
		}
		seen[a] = true
	}
	// They are usable: a backend on one answers.
	s := StartTCPEcho(t, addrs[len(addrs)-1])
	if got := echo(t, s.Addr(), "hi"); got != "hi" {
		t.Errorf("echo on %s: %q", s.Addr(), got)
	}
}
