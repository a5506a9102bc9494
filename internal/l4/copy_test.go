package l4

import (
	"bytes"
	"io"
	"net"
	"testing"
	"time"
)

// pair returns the two ends of a loopback TCP connection.
func pair(t *testing.T) (*net.TCPConn, *net.TCPConn) {
	t.Helper()
	ln, err := net.ListenTCP("tcp", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	c, err := net.DialTCP("tcp", nil, ln.Addr().(*net.TCPAddr))
	if err != nil {
		t.Fatal(err)
	}
	s, err := ln.AcceptTCP()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close(); s.Close() })
	return c, s
}

// TestCopyAdaptive sends messages smaller than the copy buffer through
// copyAdaptive and checks that every byte arrives in order and that the
// count is right: many messages in a row (reads that leave more waiting),
// and a reader that starts late behind small socket buffers, so that
// writes would block and are finished outside the read call.
func TestCopyAdaptive(t *testing.T) {
	for _, tc := range []struct {
		name      string
		msg, msgs int
		lateRead  time.Duration
		smallBufs bool
		pace      bool // a pause after each message, so reads stay small
	}{
		{"one message", 64, 1, 0, false, false},
		{"many small messages", 100, 5000, 0, false, false},
		{"writes that would block", 1000, 1000, 100 * time.Millisecond, true, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			client, relayIn := pair(t)
			relayOut, server := pair(t)
			if tc.smallBufs {
				_ = relayOut.SetWriteBuffer(16 << 10)
				_ = server.SetReadBuffer(64 << 10)
			}
			want := make([]byte, tc.msg*tc.msgs)
			for i := range want {
				want[i] = byte(i * 7)
			}
			type result struct {
				n   int64
				err error
			}
			copied := make(chan result, 1)
			go func() {
				n, err := copyAdaptive(relayOut, relayIn)
				_ = relayOut.CloseWrite()
				copied <- result{n, err}
			}()
			got := make(chan []byte, 1)
			go func() {
				time.Sleep(tc.lateRead)
				b, _ := io.ReadAll(server)
				got <- b
			}()
			for i := 0; i < len(want); i += tc.msg {
				if _, err := client.Write(want[i : i+tc.msg]); err != nil {
					t.Fatal(err)
				}
				if tc.pace {
					time.Sleep(20 * time.Microsecond)
				}
			}
			_ = client.CloseWrite()
			r := <-copied
			if r.err != nil || r.n != int64(len(want)) {
				t.Errorf("copyAdaptive = %d, %v; want %d, nil", r.n, r.err, len(want))
			}
			if b := <-got; !bytes.Equal(b, want) {
				t.Errorf("received %d bytes, not the %d sent in order", len(b), len(want))
			}
		})
	}
}
