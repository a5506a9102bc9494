package listener

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"syscall"
	"testing"
	"time"

	"go.uber.org/goleak"
	"golang.org/x/sys/unix"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// freeAP returns a currently free TCP port on addr.
func freeAP(t *testing.T, addr string) netip.AddrPort {
	t.Helper()
	return netip.MustParseAddrPort(testkit.FreeAddr(t, addr))
}

// tagger answers every connection with one byte, its tag, and closes it.
func tagger(tag byte) Handler {
	return HandlerFunc(func(c net.Conn) {
		go func() {
			defer c.Close()
			_, _ = c.Write([]byte{tag})
		}()
	})
}

// echoer answers every datagram with its tag followed by the datagram.
func echoer(tag byte) PacketHandler {
	return PacketHandlerFunc(func(sock *net.UDPConn, from netip.AddrPort, p []byte) {
		_, _ = sock.WriteToUDPAddrPort(append([]byte{tag}, p...), from)
	})
}

func tcpSet(m map[netip.AddrPort]Handler) Set { return Set{TCP: m} }

// ask dials ap and returns the tag it answers with.
func ask(ap netip.AddrPort) (byte, error) {
	c, err := net.DialTimeout("tcp", ap.String(), 2*time.Second)
	if err != nil {
		return 0, err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	b := make([]byte, 1)
	if _, err := io.ReadFull(c, b); err != nil {
		return 0, err
	}
	return b[0], nil
}

func mustTag(t *testing.T, ap netip.AddrPort, want byte) {
	t.Helper()
	got, err := ask(ap)
	if err != nil || got != want {
		t.Fatalf("%s answered %q, %v; want %q", ap, got, err, want)
	}
}

func mustReconcile(t *testing.T, r *Registry, s Set) {
	t.Helper()
	failed, err := r.Reconcile(s)
	if err != nil || len(failed) != 0 {
		t.Fatalf("Reconcile: %v, failed %v", err, failed)
	}
}

func TestReconcile(t *testing.T) {
	r := New(nil)
	defer r.Close()
	a, b := freeAP(t, "127.0.0.1"), freeAP(t, "127.0.0.2")
	ka, kb := Key("tcp", a), Key("tcp", b)

	mustReconcile(t, r, tcpSet(map[netip.AddrPort]Handler{a: tagger('a')}))
	mustTag(t, a, 'a')
	lnA := r.Listener(ka)

	// Add b, re-route a: a keeps its socket, answers with the new handler.
	mustReconcile(t, r, tcpSet(map[netip.AddrPort]Handler{a: tagger('A'), b: tagger('b')}))
	if r.Listener(ka) != lnA {
		t.Error("a's socket was replaced by a reload that kept it")
	}
	mustTag(t, a, 'A')
	mustTag(t, b, 'b')
	if got := r.Keys(); len(got) != 2 || got[0] != ka || got[1] != kb {
		t.Errorf("Keys() = %v", got)
	}

	// Remove a: it stops accepting at once.
	mustReconcile(t, r, tcpSet(map[netip.AddrPort]Handler{b: tagger('b')}))
	if _, err := ask(a); !errors.Is(err, syscall.ECONNREFUSED) {
		t.Errorf("removed socket: dial err = %v, want connection refused", err)
	}
	if r.Addr(ka) != nil {
		t.Error("Addr of a removed socket is not nil")
	}
	mustTag(t, b, 'b')
}

func TestIPv6AndKeepAlive(t *testing.T) {
	ln, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		t.Skipf("no IPv6 loopback: %v", err)
	}
	ln.Close()
	r := New(nil)
	defer r.Close()
	v6, v4 := freeAP(t, "::1"), freeAP(t, "127.0.0.1")
	accepted := make(chan net.Conn, 2)
	keep := HandlerFunc(func(c net.Conn) { accepted <- c })
	mustReconcile(t, r, tcpSet(map[netip.AddrPort]Handler{v6: keep, v4: keep}))
	if got := r.Keys(); len(got) != 2 || got[0] != Key("tcp", v4) || got[1] != "tcp/"+v6.String() {
		t.Errorf("Keys() = %v", got)
	}
	for _, ap := range []netip.AddrPort{v6, v4} {
		c, err := net.DialTimeout("tcp", ap.String(), 2*time.Second)
		if err != nil {
			t.Fatalf("%s: %v", ap, err)
		}
		defer c.Close()
		var s net.Conn
		select {
		case s = <-accepted:
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: nothing accepted", ap)
		}
		defer s.Close()
		idle := sockopt(t, s.(*net.TCPConn), unix.IPPROTO_TCP, unix.TCP_KEEPIDLE)
		if on := sockopt(t, s.(*net.TCPConn), unix.SOL_SOCKET, unix.SO_KEEPALIVE); on != 1 || idle != int(KeepAlive.Idle/time.Second) {
			t.Errorf("%s: accepted connection keep-alive %d idle %d s; want on, %v", ap, on, idle, KeepAlive.Idle)
		}
	}
}

func sockopt(t *testing.T, c *net.TCPConn, level, opt int) int {
	t.Helper()
	rc, err := c.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var v int
	var gerr error
	if err := rc.Control(func(fd uintptr) { v, gerr = unix.GetsockoptInt(int(fd), level, opt) }); err != nil || gerr != nil {
		t.Fatal(err, gerr)
	}
	return v
}

func TestFailedSocketDoesNotStopOthers(t *testing.T) {
	r := New(nil)
	defer r.Close()
	kept, fresh := freeAP(t, "127.0.0.1"), freeAP(t, "127.0.0.3")
	foreign := testkit.Listen(t, "127.0.0.4")
	busy := netip.MustParseAddrPort(foreign.Addr().String())
	nonLocal := netip.MustParseAddrPort("192.0.2.1:80") // TEST-NET-1: never a local address; bind sends nothing

	mustReconcile(t, r, tcpSet(map[netip.AddrPort]Handler{kept: tagger('k')}))
	failed, err := r.Reconcile(tcpSet(map[netip.AddrPort]Handler{
		kept: tagger('K'), fresh: tagger('f'), busy: tagger('b'), nonLocal: tagger('n')}))
	if err != nil {
		t.Fatal(err)
	}
	kb, kn := Key("tcp", busy), Key("tcp", nonLocal)
	if len(failed) != 2 || !errors.Is(failed[kb], syscall.EADDRINUSE) || !errors.Is(failed[kn], syscall.EADDRNOTAVAIL) {
		t.Fatalf("failed = %v; want %s in use and %s not available", failed, kb, kn)
	}
	if want := kb + ": bind: address already in use"; failed[kb].Error() != want {
		t.Errorf("error text %q, want %q", failed[kb], want)
	}
	var oe *OpenError
	if !errors.As(failed[kn], &oe) || oe.Key != kn {
		t.Errorf("not an *OpenError for %s: %v", kn, failed[kn])
	}
	// The others were reconciled.
	mustTag(t, kept, 'K')
	mustTag(t, fresh, 'f')
	if got := r.Pending(); len(got) != 2 || r.Err(kb) == nil || r.Err(Key("tcp", kept)) != nil {
		t.Errorf("Pending() = %v, Err(busy) = %v", got, r.Err(kb))
	}
	// Retry opens the busy one once its port is free.
	if got := r.Retry(); len(got) != 0 {
		t.Errorf("Retry opened %v while the port is still taken", got)
	}
	foreign.Close()
	if got := r.Retry(); len(got) != 1 || got[0] != kb {
		t.Fatalf("Retry after the port was freed opened %v, want [%s]", got, kb)
	}
	mustTag(t, busy, 'b')
	if got := r.Pending(); len(got) != 1 || got[0] != kn {
		t.Errorf("Pending() = %v, want [%s]", got, kn)
	}
	// A reconcile without the pending socket forgets it.
	mustReconcile(t, r, tcpSet(map[netip.AddrPort]Handler{kept: tagger('k')}))
	if got := r.Pending(); len(got) != 0 {
		t.Errorf("Pending() = %v after it was no longer wanted", got)
	}
}

func TestUDP(t *testing.T) {
	r := New(nil)
	defer r.Close()
	ap := netip.AddrPortFrom(netip.MustParseAddr("127.0.0.1"), uint16(testkit.FreeUDPPort(t, "127.0.0.1")))
	k := Key("udp", ap)
	mustReconcile(t, r, Set{UDP: map[netip.AddrPort]PacketHandler{ap: echoer('a')}})
	sock := r.PacketConn(k)
	if sock == nil || r.Listener(k) != nil || r.Addr(k) == nil {
		t.Fatalf("PacketConn %v, Addr %v", sock, r.Addr(k))
	}
	c, err := net.Dial("udp", ap.String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	exchange := func(want string) {
		t.Helper()
		buf := make([]byte, 64)
		for try := range 20 { // UDP may drop: retry, bounded
			_, _ = c.Write([]byte("hi"))
			_ = c.SetReadDeadline(time.Now().Add(250 * time.Millisecond))
			n, err := c.Read(buf)
			if err == nil {
				if string(buf[:n]) != want {
					t.Fatalf("answer %q, want %q", buf[:n], want)
				}
				return
			}
			_ = try
		}
		t.Fatalf("no answer %q", want)
	}
	exchange("ahi")
	// A reload keeps the socket and changes the handler.
	mustReconcile(t, r, Set{UDP: map[netip.AddrPort]PacketHandler{ap: echoer('b')}})
	if r.PacketConn(k) != sock {
		t.Error("UDP socket replaced by a reload that kept it")
	}
	exchange("bhi")
	// TCP and UDP on the same port are two sockets.
	tcpAP := netip.AddrPortFrom(ap.Addr(), ap.Port())
	failed, err := r.Reconcile(Set{UDP: map[netip.AddrPort]PacketHandler{ap: echoer('b')}, TCP: map[netip.AddrPort]Handler{tcpAP: tagger('t')}})
	if err != nil {
		t.Fatal(err)
	}
	if len(failed) == 0 {
		mustTag(t, tcpAP, 't')
	} // else the TCP port happened to be taken by someone else: nothing to check
	mustReconcile(t, r, Set{})
	if r.PacketConn(k) != nil {
		t.Error("UDP socket still open after removal")
	}
}

func TestAcceptedConnectionsOutliveTheirSocket(t *testing.T) {
	r := New(nil)
	ap := freeAP(t, "127.0.0.1")
	accepted := make(chan net.Conn, 1)
	mustReconcile(t, r, tcpSet(map[netip.AddrPort]Handler{ap: HandlerFunc(func(c net.Conn) { accepted <- c })}))
	client, err := net.Dial("tcp", ap.String())
	if err != nil {
		t.Fatal(err)
	}
	defer client.Close()
	var server net.Conn
	select {
	case server = <-accepted:
	case <-time.After(5 * time.Second):
		t.Fatal("no connection accepted")
	}
	defer server.Close()
	mustReconcile(t, r, Set{})
	if err := r.Close(); err != nil {
		t.Fatal(err)
	}
	// The accepted connection still carries bytes both ways.
	_ = client.SetDeadline(time.Now().Add(5 * time.Second))
	_ = server.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := client.Write([]byte("ping")); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 4)
	if _, err := io.ReadFull(server, buf); err != nil || string(buf) != "ping" {
		t.Fatalf("server read %q, %v", buf, err)
	}
	if _, err := r.Reconcile(tcpSet(map[netip.AddrPort]Handler{ap: tagger('x')})); err == nil {
		t.Error("Reconcile after Close succeeded")
	}
	if r.Retry() != nil {
		t.Error("Retry after Close opened something")
	}
}

func TestReconcileRejectsNilHandler(t *testing.T) {
	r := New(nil)
	defer r.Close()
	ap := freeAP(t, "127.0.0.1")
	for _, s := range []Set{
		{TCP: map[netip.AddrPort]Handler{ap: nil}},
		{UDP: map[netip.AddrPort]PacketHandler{ap: nil}},
	} {
		if _, err := r.Reconcile(s); err == nil {
			t.Error("Reconcile with a nil handler succeeded")
		}
		if len(r.Keys()) != 0 {
			t.Errorf("sockets open after failure: %v", r.Keys())
		}
	}
}
