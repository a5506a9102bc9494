package testkit

import (
	"net"
	"testing"
	"time"
)

func TestUDPEcho(t *testing.T) {
	s := StartUDPEcho(t, "127.0.0.8")
	if s.IP() != "127.0.0.8" || s.Addr() != net.JoinHostPort("127.0.0.8", itoa(s.Port())) {
		t.Fatalf("address %s", s.Addr())
	}
	c, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	for _, msg := range []string{"one", "two"} {
		if _, err := c.Write([]byte(msg)); err != nil {
			t.Fatal(err)
		}
		b := make([]byte, 64)
		n, err := c.Read(b)
		if err != nil || string(b[:n]) != msg {
			t.Fatalf("echo of %q: %q, %v", msg, b[:n], err)
		}
	}
	if n := s.Received(); n != 2 {
		t.Errorf("%d datagrams received, want 2", n)
	}
	s.Close()
	s.Close()
}

func TestUDPHandler(t *testing.T) {
	s := StartUDP(t, "127.0.0.8", func(pc net.PacketConn, from net.Addr, p []byte) {
		_, _ = pc.WriteTo(append([]byte("re: "), p...), from)
	})
	if got := s.Conn().LocalAddr().String(); got != s.Addr() {
		t.Errorf("Conn is on %s, want %s", got, s.Addr())
	}
	c, err := net.Dial("udp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	_, _ = c.Write([]byte("x"))
	b := make([]byte, 64)
	if n, err := c.Read(b); err != nil || string(b[:n]) != "re: x" {
		t.Errorf("answer %q, %v", b[:n], err)
	}
}
