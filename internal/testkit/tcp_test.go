package testkit

import (
	"bufio"
	"crypto/tls"
	"io"
	"net"
	"strconv"
	"testing"
	"time"
)

func itoa(n int) string { return strconv.Itoa(n) }

// echo sends line over a new connection to addr and returns what comes
// back before the client half-closes.
func echo(t *testing.T, addr, line string) string {
	t.Helper()
	c, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if _, err := io.WriteString(c, line); err != nil {
		t.Fatal(err)
	}
	_ = c.(*net.TCPConn).CloseWrite()
	b, err := io.ReadAll(c)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func TestTCPBackends(t *testing.T) {
	echoSrv := StartTCPEcho(t, "127.0.0.5")
	fixed := StartTCPFixed(t, "127.0.0.5", []byte("READY\n"))
	custom := StartTCP(t, "127.0.0.6", func(c net.Conn) {
		l, _ := bufio.NewReader(c).ReadString('\n')
		_, _ = io.WriteString(c, "got "+l)
	})
	for _, tc := range []struct {
		name     string
		srv      *TCPServer
		ip, send string
		want     string
	}{
		{"echo", echoSrv, "127.0.0.5", "ping\n", "ping\n"},
		{"fixed answer", fixed, "127.0.0.5", "anything", "READY\n"},
		{"handler", custom, "127.0.0.6", "x\n", "got x\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.srv.IP() != tc.ip || tc.srv.Addr() != net.JoinHostPort(tc.ip, itoa(tc.srv.Port())) ||
				tc.srv.Listener().Addr().String() != tc.srv.Addr() {
				t.Errorf("address %s, IP %s, port %d", tc.srv.Addr(), tc.srv.IP(), tc.srv.Port())
			}
			before := tc.srv.Accepted()
			if got := echo(t, tc.srv.Addr(), tc.send); got != tc.want {
				t.Errorf("answer %q, want %q", got, tc.want)
			}
			if n := tc.srv.Accepted() - before; n != 1 {
				t.Errorf("%d connections accepted, want 1", n)
			}
		})
	}
}

func TestTCPCloseEndsOpenConnections(t *testing.T) {
	s := StartTCPEcho(t, "127.0.0.5")
	c, err := net.Dial("tcp", s.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	Eventually(t, 5*time.Second, func() bool { return s.Accepted() == 1 }, "the connection accepted")
	done := make(chan struct{})
	go func() { s.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		t.Fatal("Close waited for a client that holds its connection open")
	}
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	if n, err := c.Read(make([]byte, 1)); err == nil {
		t.Errorf("read %d bytes from a closed backend", n)
	}
	s.Close() // again: no effect
	if _, err := net.DialTimeout("tcp", s.Addr(), time.Second); err == nil {
		t.Error("a closed backend still accepts")
	}
}

func TestTLSBackend(t *testing.T) {
	ca := NewCA(t, "testkit root")
	cfg := &tls.Config{Certificates: []tls.Certificate{ca.Server(t, "127.0.0.7", "tls.test").TLS()}}
	s := StartTLSEcho(t, "127.0.0.7", cfg)
	for _, name := range []string{"", "tls.test"} {
		c, err := tls.DialWithDialer(&net.Dialer{Timeout: 5 * time.Second}, "tcp", s.Addr(), &tls.Config{RootCAs: ca.Pool(), ServerName: name})
		if err != nil {
			t.Fatalf("server name %q: %v", name, err)
		}
		_ = c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "secret\n"); err != nil {
			t.Fatal(err)
		}
		if l, err := bufio.NewReader(c).ReadString('\n'); err != nil || l != "secret\n" {
			t.Errorf("echo over TLS: %q, %v", l, err)
		}
		c.Close()
	}
	// A client that does not trust the CA is refused.
	if c, err := tls.Dial("tcp", s.Addr(), &tls.Config{ServerName: "tls.test"}); err == nil {
		c.Close()
		t.Error("a client without the test root verified the server")
	}
}
