package udp

import (
	"net"
	"net/netip"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

func TestSourceLimiterBuckets(t *testing.T) {
	l := newSourceLimiter(10, 5) // 10/s, bursts of 5
	a, b := netip.MustParseAddr("192.0.2.1"), netip.MustParseAddr("192.0.2.2")
	now := int64(time.Hour)
	n := 0
	for range 20 {
		if l.allow(a, now) {
			n++
		}
	}
	if n != 5 {
		t.Errorf("%d sessions allowed at once, want the burst 5", n)
	}
	if l.bucket(a) != l.bucket(b) && !l.allow(b, now) { // one chance in 4096 that they share a bucket
		t.Error("another address refused")
	}
	if l.allow(a, now+int64(50*time.Millisecond)) {
		t.Error("allowed before a token came back")
	}
	if !l.allow(a, now+int64(100*time.Millisecond)) {
		t.Error("refused after a token came back (100 ms at 10/s)")
	}
	// IPv6 addresses count by /64; the IPv4-mapped form is the IPv4 address.
	v6 := newSourceLimiter(1, 2)
	for i, s := range []string{"2001:db8::1", "2001:db8::2:3"} {
		if !v6.allow(netip.MustParseAddr(s), now) {
			t.Errorf("address %d of the /64 refused within the burst", i)
		}
	}
	if v6.allow(netip.MustParseAddr("2001:db8::ffff:1"), now) {
		t.Error("third address of one /64 allowed over a burst of 2")
	}
	m := newSourceLimiter(1, 1)
	if !m.allow(netip.MustParseAddr("::ffff:192.0.2.9"), now) || m.allow(netip.MustParseAddr("192.0.2.9"), now) {
		t.Error("an IPv4-mapped address and its IPv4 form are different sources")
	}
	// Defaults, and no limit.
	d := newSourceLimiter(0, 0)
	if d.interval != int64(time.Second/DefaultSourceRate) || d.tolerance != d.interval*DefaultSourceBurst {
		t.Errorf("defaults: interval %d, tolerance %d", d.interval, d.tolerance)
	}
	none := newSourceLimiter(-1, 0)
	for range 10000 {
		if !none.allow(a, now) {
			t.Fatal("a negative rate limits")
		}
	}
}

// TestSourceRateLimit opens sessions from many ports of one client
// address: those over the burst are refused and counted, while a client of
// another address is served.
func TestSourceRateLimit(t *testing.T) {
	a := startEcho(t, "127.0.0.51", "a")
	stats := new(backend.Counters)
	const burst = 10
	f := startFront(t, "127.0.0.50", Options{SourceRate: 1, SourceBurst: burst},
		ServiceConfig{ID: 1, Picker: picker(t, rsOf("127.0.0.51", a.port)), Stats: stats})
	const ports = 60
	var socks []*net.UDPConn
	for range ports {
		c := phone(t) // 127.0.0.1, a new port each
		socks = append(socks, c)
		if _, err := c.WriteToUDPAddrPort([]byte("x"), f.vip); err != nil {
			t.Fatal(err)
		}
	}
	// Refusals are counted on the VIP socket's read loop, sessions once
	// the starter has made them: wait for both.
	eventually(t, "the refusals to be counted and the burst's sessions made", func() bool {
		return stats.LimitHits(backend.LimitConnRate) >= ports-burst-2 && stats.Total() >= burst
	})
	// The test takes well under a second: at 1/s, one more token at most.
	if made := stats.Total(); made < burst || made > burst+1 {
		t.Errorf("%d sessions made from one address, want the burst %d (+1)", made, burst)
	}
	answered := 0
	buf := make([]byte, 64)
	deadline := time.Now().Add(300 * time.Millisecond) // one wait for all
	for _, c := range socks {
		_ = c.SetReadDeadline(deadline)
		if _, _, err := c.ReadFromUDPAddrPort(buf); err == nil {
			answered++
		}
	}
	if answered > burst+1 {
		t.Errorf("%d ports of one address answered, want at most %d", answered, burst+1)
	}
	// Another address is not limited by the first one's use (unless they
	// share a bucket: one chance in 4096).
	if f.proxy.sources.bucket(netip.AddrFrom4([4]byte{127, 0, 0, 1})) == f.proxy.sources.bucket(netip.AddrFrom4([4]byte{127, 0, 0, 2})) {
		t.Skip("127.0.0.1 and 127.0.0.2 share a bucket")
	}
	other, err := net.ListenUDP("udp", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 2)})
	if err != nil {
		t.Fatal(err)
	}
	defer other.Close()
	if r, _ := exchange(t, other, f.vip, "y"); r != "a y" {
		t.Errorf("a client of another address: %q", r)
	}
}
