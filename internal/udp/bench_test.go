package udp

import (
	"net"
	"net/netip"
	"sync"
	"testing"
	"time"
)

// rawServer is a UDP real server for benchmarks that allocates nothing:
// it echoes every datagram when echo is set, else it only reads.
func rawServer(b *testing.B, addr string, echo bool) int {
	b.Helper()
	pc, err := net.ListenUDP("udp", net.UDPAddrFromAddrPort(netip.AddrPortFrom(netip.MustParseAddr(addr), 0)))
	if err != nil {
		b.Fatal(err)
	}
	_ = pc.SetReadBuffer(4 << 20)
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		buf := make([]byte, 65535)
		for {
			n, from, err := pc.ReadFromUDPAddrPort(buf)
			if err != nil {
				return
			}
			if echo {
				_, _ = pc.WriteToUDPAddrPort(buf[:n], from)
			}
		}
	}()
	b.Cleanup(func() {
		pc.Close()
		wg.Wait()
	})
	return pc.LocalAddr().(*net.UDPAddr).Port
}

// BenchmarkForward measures one datagram's round trip through an
// established session: client → VIP → real server → VIP → client.
func BenchmarkForward(b *testing.B) {
	port := rawServer(b, "127.0.0.51", true)
	f := startFront(b, "127.0.0.50", Options{}, ServiceConfig{ID: 1, Picker: picker(b, rsOf("127.0.0.51", port))})
	c := phone(b)
	if r, _ := exchange(b, c, f.vip, "hello"); r != "hello" {
		b.Fatalf("answer %q", r)
	}
	msg := make([]byte, 100)
	buf := make([]byte, 2048)
	b.ReportAllocs()
	b.SetBytes(int64(len(msg)))
	b.ResetTimer()
	lost := 0
	for i := 0; i < b.N; i++ {
		if _, err := c.WriteToUDPAddrPort(msg, f.vip); err != nil {
			b.Fatal(err)
		}
		_ = c.SetReadDeadline(time.Now().Add(200 * time.Millisecond))
		if _, _, err := c.ReadFromUDPAddrPort(buf); err != nil {
			lost++
		}
	}
	b.StopTimer()
	if lost > b.N/100+1 {
		b.Fatalf("%d of %d datagrams unanswered", lost, b.N)
	}
}

// BenchmarkNewSession measures the start of a session: each datagram
// comes from a new client address (as in a spoofed flood) and goes to a
// real server that does not answer; the table (1024 sessions) is full
// after the first iterations, so a session is evicted for each one made.
// Sessions may be made by another goroutine than the caller's: at most 64
// are left waiting, so the figure is the rate at which they are made.
func BenchmarkNewSession(b *testing.B) {
	port := rawServer(b, "127.0.0.51", false)
	sock, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 50)})
	if err != nil {
		b.Fatal(err)
	}
	defer sock.Close()
	p := New(Options{Logger: quiet, MaxSessions: 1024})
	defer p.Close()
	svc := p.Service(ServiceConfig{ID: 1, Picker: picker(b, rsOf("127.0.0.51", port))})
	msg := make([]byte, 100)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		a := floodSource(i).To4()
		from := netip.AddrPortFrom(netip.AddrFrom4([4]byte(a)), 5060)
		svc.HandlePacket(sock, from, msg)
		if svc.cfg.Stats.Total() < int64(i-64) { // let the sessions' maker catch up
			for deadline := time.Now().Add(time.Second); svc.cfg.Stats.Total() < int64(i-32); {
				if time.Now().After(deadline) {
					b.Fatalf("%d sessions made for %d datagrams", svc.cfg.Stats.Total(), i)
				}
				time.Sleep(20 * time.Microsecond)
			}
		}
	}
	for deadline := time.Now().Add(time.Second); svc.cfg.Stats.Total() < int64(b.N) && time.Now().Before(deadline); {
		time.Sleep(20 * time.Microsecond)
	}
	b.StopTimer()
	if made := svc.cfg.Stats.Total(); made < int64(b.N)*9/10 {
		b.Fatalf("%d sessions made for %d datagrams", made, b.N)
	}
}
