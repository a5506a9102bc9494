package persist

import (
	"crypto/tls"
	"crypto/x509"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"testing"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/testkit"
)

// clientHello builds a TLS 1.2-style ClientHello record with the given
// session ID and SNI (and supported_versions offering 1.3 and 1.2).
func clientHello(sid []byte, sni string) []byte {
	var body []byte
	body = append(body, 3, 3)
	body = append(body, make([]byte, 32)...)
	body = append(body, byte(len(sid)))
	body = append(body, sid...)
	body = append(body, 0, 2, 0x13, 0x01) // one cipher suite
	body = append(body, 1, 0)             // null compression
	var ext []byte
	name := []byte(sni)
	sn := binary.BigEndian.AppendUint16(nil, uint16(3+len(name)))
	sn = append(sn, 0)
	sn = binary.BigEndian.AppendUint16(sn, uint16(len(name)))
	sn = append(sn, name...)
	ext = binary.BigEndian.AppendUint16(ext, 0)
	ext = binary.BigEndian.AppendUint16(ext, uint16(len(sn)))
	ext = append(ext, sn...)
	ext = append(ext, 0, 43, 0, 5, 4, 3, 4, 3, 3)
	body = binary.BigEndian.AppendUint16(body, uint16(len(ext)))
	body = append(body, ext...)
	return record(1, body)
}

// serverHello builds a ServerHello record with the given session ID,
// selecting TLS 1.3 (supported_versions) or not.
func serverHello(sid []byte, tls13 bool) []byte {
	var body []byte
	body = append(body, 3, 3)
	body = append(body, make([]byte, 32)...)
	body = append(body, byte(len(sid)))
	body = append(body, sid...)
	body = append(body, 0x13, 0x01, 0)
	var ext []byte
	if tls13 {
		ext = append(ext, 0, 43, 0, 2, 3, 4)
	}
	body = binary.BigEndian.AppendUint16(body, uint16(len(ext)))
	body = append(body, ext...)
	return record(2, body)
}

func record(typ byte, body []byte) []byte {
	msg := []byte{typ, byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}
	msg = append(msg, body...)
	rec := []byte{22, 3, 1, byte(len(msg) >> 8), byte(len(msg))}
	return append(rec, msg...)
}

func TestParseHelloBuilt(t *testing.T) {
	sid := []byte("0123456789abcdef0123456789abcdef")
	h, err := ParseHello(clientHello(sid, "lync.example.com"))
	if err != nil {
		t.Fatal(err)
	}
	if h.Server || string(h.SessionID) != string(sid) || h.SNI != "lync.example.com" || !h.TLS13 {
		t.Errorf("ClientHello parsed as %+v", h)
	}
	h, err = ParseHello(serverHello(sid[:16], false))
	if err != nil {
		t.Fatal(err)
	}
	if !h.Server || string(h.SessionID) != string(sid[:16]) || h.TLS13 {
		t.Errorf("TLS 1.2 ServerHello parsed as %+v", h)
	}
	h, err = ParseHello(serverHello(sid, true))
	if err != nil || !h.TLS13 {
		t.Errorf("TLS 1.3 ServerHello parsed as %+v, %v", h, err)
	}
	h, err = ParseHello(clientHello(nil, ""))
	if err != nil || h.SessionID != nil || h.SNI != "" {
		t.Errorf("empty session: %+v, %v", h, err)
	}
	// Split over two records.
	full := clientHello(sid, "a.example")
	msg := full[5:]
	split := append(append([]byte{22, 3, 1, 0, 10}, msg[:10]...), append([]byte{22, 3, 1, byte((len(msg) - 10) >> 8), byte(len(msg) - 10)}, msg[10:]...)...)
	if h, err := ParseHello(split); err != nil || h.SNI != "a.example" {
		t.Errorf("hello over two records: %+v, %v", h, err)
	}
	for n := range len(full) {
		if _, err := ParseHello(full[:n]); !errors.Is(err, ErrIncomplete) {
			t.Fatalf("first %d bytes: err %v, want ErrIncomplete", n, err)
		}
	}
	for _, b := range [][]byte{
		[]byte("GET / HTTP/1.1\r\n\r\n"),
		{23, 3, 3, 0, 1, 0},
		record(11, []byte{0, 0, 0}),
		record(1, []byte{3, 3}),
	} {
		if _, err := ParseHello(b); !errors.Is(err, ErrNotHello) {
			t.Errorf("ParseHello(%q): err %v, want ErrNotHello", b, err)
		}
	}
}

// TestParseHelloRealTLS parses the hellos of real crypto/tls handshakes:
// TLS 1.3 and TLS 1.2.
func TestParseHelloRealTLS(t *testing.T) {
	cert := testkit.SelfSigned(t, testkit.Leaf{Names: []string{"fulcrum.test"}}).TLS()
	for _, max := range []uint16{tls.VersionTLS13, tls.VersionTLS12} {
		ch, sh := handshake(t, cert, max)
		c, err := ParseHello(ch)
		if err != nil {
			t.Fatalf("ClientHello: %v", err)
		}
		s, err := ParseHello(sh)
		if err != nil {
			t.Fatalf("ServerHello: %v", err)
		}
		if c.Server || c.SNI != "fulcrum.test" || !c.TLS13 {
			t.Errorf("max %x: ClientHello %+v", max, c)
		}
		if !s.Server || s.TLS13 != (max == tls.VersionTLS13) {
			t.Errorf("max %x: ServerHello %+v", max, s)
		}
		if max == tls.VersionTLS13 && string(s.SessionID) != string(c.SessionID) {
			t.Errorf("TLS 1.3 ServerHello must echo the client's legacy session ID")
		}
	}
}

// handshake runs a real TLS handshake over a socket pair on 127.0.0.1 and
// returns the first bytes each side sent (ClientHello, ServerHello).
func handshake(t *testing.T, cert tls.Certificate, max uint16) (ch, sh []byte) {
	t.Helper()
	ln := testkit.Listen(t, "127.0.0.1")
	defer ln.Close()
	// A relay between client and server records the first record of each.
	done := make(chan error, 3)
	srv := testkit.StartTLS(t, "127.0.0.1", &tls.Config{Certificates: []tls.Certificate{cert}, MaxVersion: max}, func(c net.Conn) {
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		done <- c.(*tls.Conn).Handshake()
	})
	defer srv.Close()
	hellos := make(chan [2][]byte, 1)
	go func() {
		var got [2][]byte
		defer func() { hellos <- got }()
		c, err := ln.Accept()
		if err != nil {
			done <- err
			return
		}
		defer c.Close()
		s, err := net.Dial("tcp", srv.Addr())
		if err != nil {
			done <- err
			return
		}
		defer s.Close()
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		_ = s.SetDeadline(time.Now().Add(10 * time.Second))
		up := make(chan []byte, 1)
		go func() { up <- relayFirst(s, c) }()
		got[1] = relayFirst(c, s)
		got[0] = <-up
		done <- nil
	}()
	c, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	pool := x509.NewCertPool()
	pool.AddCert(cert.Leaf)
	cl := tls.Client(c, &tls.Config{ServerName: "fulcrum.test", RootCAs: pool})
	_ = cl.SetDeadline(time.Now().Add(10 * time.Second))
	if err := cl.Handshake(); err != nil {
		t.Fatalf("handshake: %v", err)
	}
	cl.Close()
	c.Close()
	for range 2 {
		if err := <-done; err != nil && !errors.Is(err, io.EOF) {
			t.Logf("handshake side: %v", err)
		}
	}
	got := <-hellos
	return got[0], got[1]
}

// relayFirst copies src to dst, keeping the first TLS record it carries,
// until src ends.
func relayFirst(dst, src net.Conn) []byte {
	var first []byte
	buf := make([]byte, 32<<10)
	var all []byte
	for {
		n, err := src.Read(buf)
		if n > 0 {
			all = append(all, buf[:n]...)
			if first == nil && len(all) >= 5 {
				if l := int(binary.BigEndian.Uint16(all[3:5])); len(all) >= 5+l {
					first = append([]byte(nil), all[:5+l]...)
				}
			}
			if _, err := dst.Write(buf[:n]); err != nil {
				return first
			}
		}
		if err != nil {
			if tc, ok := dst.(*net.TCPConn); ok {
				_ = tc.CloseWrite()
			}
			return first
		}
	}
}
