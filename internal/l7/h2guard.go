package l7

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"runtime"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2guard sits between an HTTP/2 client connection and x/net/http2's
// server and reads the client's frames first, one whole frame at a time:
//
//   - a request header block holding a connection-specific field
//     (Connection, Keep-Alive, Proxy-Connection, Transfer-Encoding,
//     Upgrade) or TE other than "trailers" ends the connection (RFC 9113
//     §8.2.2 makes it malformed; §5.4.1 lets a stream error be treated as
//     a connection error) — x/net would answer 400 and carry on;
//   - a SETTINGS frame that repeats a setting is passed with the earlier
//     occurrences renamed to unknown identifiers, which the receiver must
//     ignore, so the last value wins as RFC 9113 §6.5.3 orders — x/net
//     hangs up on duplicates;
//   - RST_STREAM frames are counted for the rapid-reset guard.
//
// Everything else passes through unchanged.
type h2guard struct {
	net.Conn
	br      *bufio.Reader
	preface int    // bytes of the client preface still to pass
	out     []byte // bytes of the current frame not yet returned
	buf     []byte
	block   []byte // header block being assembled
	blockID uint32
	dec     *hpack.Decoder
	decOK   bool
	bad     bool // the block being decoded holds a forbidden field
	maxHdr  int
	resets  int64
	hc      *h2conn
}

// ConnectionState lets x/net/http2 see the TLS state (and check it).
func (g *h2guard) ConnectionState() tls.ConnectionState {
	if tc, ok := g.Conn.(*tls.Conn); ok {
		return tc.ConnectionState()
	}
	return tls.ConnectionState{}
}

// Write implements net.Conn. x/net/http2 flushes its buffer whenever its
// queue of frames runs empty, which with handlers answering one at a time
// means a TLS record and a write(2) for nearly every frame. Yielding once
// before the write lets the goroutines that are ready (handlers with an
// answer from their real server, other connections) run first, so that
// the frames they hand to the serve loop meanwhile go out together in the
// next flush. It delays a write by one turn of the scheduler, no longer.
func (g *h2guard) Write(p []byte) (int, error) {
	runtime.Gosched()
	return g.Conn.Write(p)
}

// errResetFlood ends a connection that resets most of its streams.
var errResetFlood = errors.New("http2: too many streams reset by the client")

// errMalformedH2 ends a connection that sent a malformed request.
var errMalformedH2 = errors.New("http2: malformed request header block")

func newH2Guard(c net.Conn, maxHeaderBytes int) *h2guard {
	g := &h2guard{Conn: c, br: bufio.NewReaderSize(c, 16<<10), preface: len(http2.ClientPreface), decOK: true, maxHdr: maxHeaderBytes}
	g.dec = hpack.NewDecoder(4096, g.emit)
	g.dec.SetMaxStringLength(maxHeaderBytes)
	return g
}

// maxGuardFrame is the largest frame payload the guard reads whole; larger
// ones (beyond what the server advertises) pass unread for x/net to refuse.
const maxGuardFrame = 1 << 16

// Read implements net.Conn.
func (g *h2guard) Read(p []byte) (int, error) {
	if g.preface > 0 {
		n, err := g.br.Read(p[:min(len(p), g.preface)])
		g.preface -= n
		return n, err
	}
	if len(g.out) == 0 {
		if err := g.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, g.out)
	g.out = g.out[n:]
	return n, nil
}

// next reads the next frame into g.out, inspecting it.
func (g *h2guard) next() error {
	hdr, err := g.br.Peek(9)
	if err != nil {
		if len(hdr) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return err
	}
	length := int(hdr[0])<<16 | int(hdr[1])<<8 | int(hdr[2])
	typ, flags := http2.FrameType(hdr[3]), http2.Flags(hdr[4])
	id := binary.BigEndian.Uint32(hdr[5:9]) & (1<<31 - 1)
	if length > maxGuardFrame {
		// Pass the header only; the server refuses the frame and hangs up.
		g.buf = append(g.buf[:0], hdr...)
		_, _ = g.br.Discard(9)
		g.out = g.buf
		g.decOK = false
		return nil
	}
	if cap(g.buf) < 9+length {
		g.buf = make([]byte, 9+length)
	}
	g.buf = g.buf[:9+length]
	if _, err := io.ReadFull(g.br, g.buf); err != nil {
		return err
	}
	payload := g.buf[9:]
	switch typ {
	case http2.FrameSettings:
		if !flags.Has(http2.FlagSettingsAck) && length%6 == 0 {
			dedupeSettings(payload)
		}
	case http2.FrameRSTStream:
		g.resets++
		if g.hc != nil && g.resets > abandonLimit && g.resets > 2*g.hc.completed.Load() {
			return errResetFlood
		}
	case http2.FrameHeaders:
		frag := payload
		if flags.Has(http2.FlagHeadersPadded) {
			if len(frag) < 1 || int(frag[0]) > len(frag)-1 {
				g.decOK = false
				break
			}
			frag = frag[1 : len(frag)-int(frag[0])]
		}
		if flags.Has(http2.FlagHeadersPriority) {
			if len(frag) < 5 {
				g.decOK = false
				break
			}
			frag = frag[5:]
		}
		g.block = append(g.block[:0], frag...)
		g.blockID = id
		if flags.Has(http2.FlagHeadersEndHeaders) {
			if err := g.checkBlock(); err != nil {
				return err
			}
		}
	case http2.FrameContinuation:
		if id == g.blockID && len(g.block)+len(payload) <= 2*g.maxHdr+maxGuardFrame {
			g.block = append(g.block, payload...)
		} else {
			g.decOK = false // x/net refuses this (wrong stream or too large)
		}
		if flags.Has(http2.FlagContinuationEndHeaders) {
			if err := g.checkBlock(); err != nil {
				return err
			}
		}
	}
	g.out = g.buf
	return nil
}

// checkBlock decodes a complete header block and refuses
// connection-specific fields. The fields are looked at as the decoder
// emits them, not collected.
func (g *h2guard) checkBlock() error {
	block := g.block
	g.block = g.block[:0]
	if !g.decOK {
		return nil
	}
	g.bad = false
	_, err := g.dec.Write(block)
	if err == nil {
		err = g.dec.Close()
	}
	if err != nil {
		g.decOK = false // x/net sees the same error and ends the connection
		return nil
	}
	if g.bad {
		return errMalformedH2
	}
	return nil
}

// emit looks at one decoded request field.
func (g *h2guard) emit(f hpack.HeaderField) {
	switch f.Name {
	case "connection", "keep-alive", "proxy-connection", "transfer-encoding", "upgrade":
		g.bad = true
	case "te":
		if f.Value != "trailers" {
			g.bad = true
		}
	}
}

// dedupeSettings renames every setting that a later entry of the same
// frame repeats to an unknown identifier (0xf000 + position).
func dedupeSettings(p []byte) {
	n := len(p) / 6
	for i := 0; i < n; i++ {
		id := binary.BigEndian.Uint16(p[i*6:])
		for j := i + 1; j < n; j++ {
			if binary.BigEndian.Uint16(p[j*6:]) == id {
				binary.BigEndian.PutUint16(p[i*6:], uint16(0xf000+i))
				break
			}
		}
	}
}
