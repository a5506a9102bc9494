package l7

import (
	"bytes"
	"io"
	"net"
	"testing"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2Seed returns HTTP/2 frames (after the preface) for the fuzzer to start
// from: SETTINGS, a HEADERS block split over CONTINUATION, a padded HEADERS
// frame with a connection-specific field, DATA and RST_STREAM.
func h2Seed(t testing.TB) [][]byte {
	t.Helper()
	block := func(fields ...string) []byte {
		var b bytes.Buffer
		enc := hpack.NewEncoder(&b)
		for i := 0; i+1 < len(fields); i += 2 {
			if err := enc.WriteField(hpack.HeaderField{Name: fields[i], Value: fields[i+1]}); err != nil {
				t.Fatal(err)
			}
		}
		return b.Bytes()
	}
	get := block(":method", "GET", ":scheme", "https", ":authority", "a.example", ":path", "/", "user-agent", "fuzz")
	var seeds [][]byte
	write := func(fn func(fr *http2.Framer) error) {
		var b bytes.Buffer
		if err := fn(http2.NewFramer(&b, nil)); err != nil {
			t.Fatal(err)
		}
		seeds = append(seeds, b.Bytes())
	}
	write(func(fr *http2.Framer) error {
		if err := fr.WriteSettings(http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 100},
			http2.Setting{ID: http2.SettingMaxConcurrentStreams, Val: 1}); err != nil {
			return err
		}
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: get, EndStream: true, EndHeaders: true})
	})
	write(func(fr *http2.Framer) error {
		if err := fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 3, BlockFragment: get[:4]}); err != nil {
			return err
		}
		if err := fr.WriteContinuation(3, true, get[4:]); err != nil {
			return err
		}
		if err := fr.WriteData(3, true, []byte("body")); err != nil {
			return err
		}
		return fr.WriteRSTStream(3, http2.ErrCodeCancel)
	})
	write(func(fr *http2.Framer) error {
		return fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 5, EndHeaders: true, PadLength: 7,
			BlockFragment: block(":method", "GET", ":path", "/", "connection", "keep-alive"),
			Priority:      http2.PriorityParam{StreamDep: 1, Weight: 9}})
	})
	return seeds
}

// FuzzH2Guard feeds arbitrary frames, after a valid client preface,
// through the guard in front of the HTTP/2 server over a real in-memory
// connection: it must never panic, never hand on more bytes than it read,
// and always end (with an error or EOF) once its input ends.
func FuzzH2Guard(f *testing.F) {
	for _, s := range h2Seed(f) {
		f.Add(s)
	}
	f.Add([]byte{0, 0, 0, 4, 0, 0, 0, 0, 0})                // empty SETTINGS
	f.Add([]byte{0xff, 0xff, 0xff, 1, 4, 0, 0, 0, 1, 0x82}) // oversized HEADERS
	f.Fuzz(func(t *testing.T, frames []byte) {
		in := append([]byte(http2.ClientPreface), frames...)
		client, server := net.Pipe()
		go func() {
			_, _ = client.Write(in)
			_ = client.Close()
		}()
		go func() { _, _ = io.Copy(io.Discard, client) }() // a GOAWAY of the guard's own
		defer server.Close()
		g := newH2Guard(server, 16<<10)
		buf := make([]byte, 4096)
		out := 0
		for range 1 << 16 {
			n, err := g.Read(buf)
			out += n
			if err != nil {
				break
			}
			if n == 0 {
				t.Fatal("Read returned 0 bytes and no error")
			}
		}
		if out > len(in) {
			t.Fatalf("the guard handed on %d bytes of %d read", out, len(in))
		}
	})
}
