package l7

import (
	"bufio"
	"crypto/tls"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// h2guard sits between an HTTP/2 client connection and x/net/http2's
// server. It reads the client's frames first, one whole frame at a time:
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
//   - frames that cost the server work but carry no request (SETTINGS,
//     PING, PRIORITY, WINDOW_UPDATE, RST_STREAM, empty DATA, unknown
//     types) are counted per one-second window against the budgets of
//     frameBudgets; a client over budget, or one that resets most of its
//     streams (rapid reset), gets GOAWAY ENHANCE_YOUR_CALM and is closed.
//
// It also follows the frames x/net writes, so that it knows when the
// output is between two frames and can put a GOAWAY of its own there: on
// abuse, and when the connection has been idle for the service's idle
// timeout (see h2conn.checkIdle). x/net's own idle timer is not used: it
// is re-armed when the streams of a connection that already ended are
// closed, which kept each such connection's memory for the whole idle
// timeout (issue 14).
//
// Everything else passes through unchanged.
type h2guard struct {
	net.Conn
	br      *bufio.Reader
	preface int    // bytes of the client preface still to pass
	out     []byte // bytes of the current frame not yet returned
	buf     []byte
	blockID uint32 // stream of the header block being decoded
	inBlock bool   // a header block is being decoded: CONTINUATION may follow
	blockN  int    // encoded bytes of that block so far
	listN   int    // decoded size of its fields so far, as x/net counts it
	dec     *hpack.Decoder
	decOK   bool
	bad     bool // the block being decoded holds a forbidden field
	maxHdr  int
	resets  int64   // RST_STREAM frames from the client
	instant int64   // of them, resets of the newest stream before any answer
	hc      *h2conn // nil in tests of the guard alone
	win     frameWindow

	// smu orders new streams against the end of the connection: once
	// draining is set no new stream reaches x/net, so the stream ID in
	// the GOAWAY is the last one it will ever see.
	smu        sync.Mutex
	lastStream uint32      // highest client stream ID handed to x/net
	draining   atomic.Bool // a GOAWAY was decided: hand nothing more to x/net; set under smu
	calmed     atomic.Bool // calm ran

	// wmu serialises writes to the connection: x/net's and the guard's
	// GOAWAY. The fields below follow x/net's output frame by frame.
	wmu      sync.Mutex
	wHdr     [9]byte
	wHdrN    int           // bytes of an output frame header seen so far
	wLeft    int           // payload bytes of the current output frame still to come
	dataOut  atomic.Int64  // DATA frames written to the client
	answered atomic.Uint32 // highest client stream the server wrote a frame on
}

// frameWindow counts, per one-second window, the frames of each kind that
// frameBudgets bounds.
type frameWindow struct {
	start   time.Time
	counts  [budgetKinds]int
	streams int   // streams the client opened in the window
	dataOut int64 // h2guard.dataOut when the window started
}

// The kinds of frames bounded per window.
const (
	budgetSettings = iota
	budgetPing
	budgetPriority
	budgetWindowUpdate
	budgetEmptyData
	budgetOther // unknown frame types
	budgetKinds
)

var budgetNames = [budgetKinds]string{"SETTINGS", "PING", "PRIORITY", "WINDOW_UPDATE", "empty DATA", "unknown"}

// frameBudgets are how many frames of each kind a client may send in one
// second: a base allowance, plus for PRIORITY and WINDOW_UPDATE a share of
// the streams it opened and of the DATA frames it was sent in that second
// (a client downloading fast acknowledges more). A legitimate client sends
// one SETTINGS frame and a PING now and then; the floods of reliability.md
// (F16) send millions.
var frameBudgets = [budgetKinds]struct{ base, perStream, perDataOut int }{
	budgetSettings:     {base: 20},
	budgetPing:         {base: 20},
	budgetPriority:     {base: 100, perStream: 4},
	budgetWindowUpdate: {base: 100, perStream: 4, perDataOut: 4},
	budgetEmptyData:    {base: 100},
	budgetOther:        {base: 100},
}

// rapidResetLimit: a connection whose client has reset more than this many
// streams, and more than twice as many as completed, is closed
// (CVE-2023-44487). x/net already bounds the handlers running at once to
// MaxConcurrentStreams.
const rapidResetLimit = 100

// instantResetLimit: a connection whose client has reset more than this
// many streams before the server wrote anything on them, each right after
// opening it (the newest stream), and more than it completed, is closed
// at once. That is the rapid-reset attack's own pattern — HEADERS then
// RST_STREAM — which a browser cancelling a page's requests (older
// streams, most answered) does not follow; it cuts an attack after 21
// streams instead of 101, a fifth of the work.
const instantResetLimit = 20

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
	g.wmu.Lock()
	n, err := g.Conn.Write(p)
	g.follow(p[:n])
	g.wmu.Unlock()
	return n, err
}

// follow advances the output frame position over p, which was written.
func (g *h2guard) follow(p []byte) {
	for len(p) > 0 {
		if g.wLeft > 0 {
			k := min(g.wLeft, len(p))
			g.wLeft -= k
			p = p[k:]
			continue
		}
		k := copy(g.wHdr[g.wHdrN:], p)
		g.wHdrN += k
		p = p[k:]
		if g.wHdrN == len(g.wHdr) {
			g.wLeft = int(g.wHdr[0])<<16 | int(g.wHdr[1])<<8 | int(g.wHdr[2])
			g.wHdrN = 0
			if http2.FrameType(g.wHdr[3]) == http2.FrameData {
				g.dataOut.Add(1)
			}
			if id := binary.BigEndian.Uint32(g.wHdr[5:9]) & (1<<31 - 1); id > g.answered.Load() {
				g.answered.Store(id) // only this writer stores it
			}
		}
	}
}

// goAway stops handing new streams to x/net and writes a GOAWAY frame with
// code and debug text (see writeGoAway). It reports whether the frame was
// written.
func (g *h2guard) goAway(code http2.ErrCode, debug string) bool {
	g.smu.Lock()
	last := g.stopStreams()
	g.smu.Unlock()
	return g.writeGoAway(last, code, debug)
}

// stopStreams makes the guard hand no new stream to x/net and returns the
// last stream it handed on. g.smu must be held.
func (g *h2guard) stopStreams() uint32 {
	g.draining.Store(true)
	return g.lastStream
}

// writeGoAway writes a GOAWAY frame naming last, when the output is
// between two frames and no write is under way (a writer blocked on a
// client that does not read must not hold this up). It reports whether
// the frame was written.
func (g *h2guard) writeGoAway(last uint32, code http2.ErrCode, debug string) bool {
	if !g.wmu.TryLock() {
		return false
	}
	defer g.wmu.Unlock()
	if g.wLeft != 0 || g.wHdrN != 0 {
		return false
	}
	f := make([]byte, 9+8+len(debug))
	n := 8 + len(debug)
	f[0], f[1], f[2] = byte(n>>16), byte(n>>8), byte(n)
	f[3] = byte(http2.FrameGoAway)
	binary.BigEndian.PutUint32(f[9:], last)
	binary.BigEndian.PutUint32(f[13:], uint32(code))
	copy(f[17:], debug)
	_ = g.Conn.SetWriteDeadline(time.Now().Add(time.Second))
	_, err := g.Conn.Write(f)
	return err == nil
}

// errH2Abuse ends a connection whose client floods it or resets most of
// its streams.
var errH2Abuse = errors.New("http2: client over its frame budget")

// errMalformedH2 ends a connection that sent a malformed request.
var errMalformedH2 = errors.New("http2: malformed request header block")

// calm answers abuse seen while reading: GOAWAY ENHANCE_YOUR_CALM, then the
// returned error ends the connection.
func (g *h2guard) calm(reason string) error {
	if g.calmed.Swap(true) {
		return errH2Abuse // the handlers and the reader may both see it
	}
	g.goAway(http2.ErrCodeEnhanceYourCalm, reason)
	if hc := g.hc; hc != nil {
		p := hc.svc.proxy
		name := hc.svc.st.Load().cfg.Name
		p.log.Debug("l7: closing an abusive HTTP/2 connection", "service", name, "client", hc.client, "reason", reason,
			"completed", hc.completed.Load(), "abandoned", hc.abandoned.Load())
		if p.box.strike(hc.client.Addr(), time.Now()) {
			p.log.Warn("l7: refusing a client's new connections for a while: its HTTP/2 connections were closed for abuse repeatedly",
				"service", name, "client", hc.client.Addr(), "reason", reason, "for", penaltyTime)
		}
	}
	return errH2Abuse
}

func newH2Guard(c net.Conn, maxHeaderBytes int) *h2guard {
	g := &h2guard{Conn: c, br: bufio.NewReaderSize(c, 16<<10), preface: len(http2.ClientPreface), decOK: true, maxHdr: maxHeaderBytes}
	g.dec = hpack.NewDecoder(4096, g.emit)
	g.dec.SetMaxStringLength(maxHeaderBytes)
	g.win.start = time.Now()
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
	for len(g.out) == 0 {
		if err := g.next(); err != nil {
			return 0, err
		}
	}
	n := copy(p, g.out)
	g.out = g.out[n:]
	return n, nil
}

// next reads the next frame into g.out, inspecting it. After a GOAWAY of
// the guard's own, frames are read and dropped until the client closes or
// the drain deadline passes; then the connection ends.
func (g *h2guard) next() error {
	hdr, err := g.br.Peek(9)
	if err != nil {
		if len(hdr) > 0 && err == io.EOF {
			err = io.ErrUnexpectedEOF
		}
		return g.ended(err)
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
		return g.ended(err)
	}
	payload := g.buf[9:]
	switch typ {
	case http2.FrameData:
		if length == 0 && !flags.Has(http2.FlagDataEndStream) {
			if err := g.count(budgetEmptyData); err != nil {
				return err
			}
		}
	case http2.FrameSettings:
		if !flags.Has(http2.FlagSettingsAck) {
			if err := g.count(budgetSettings); err != nil {
				return err
			}
			if length%6 == 0 {
				dedupeSettings(payload)
			}
		}
	case http2.FramePing:
		if err := g.count(budgetPing); err != nil {
			return err
		}
	case http2.FramePriority:
		if err := g.count(budgetPriority); err != nil {
			return err
		}
	case http2.FrameWindowUpdate:
		if err := g.count(budgetWindowUpdate); err != nil {
			return err
		}
	case http2.FrameRSTStream:
		g.resets++
		if id == g.lastStream && id > g.answered.Load() {
			g.instant++ // only this reader writes lastStream
		}
		if g.hc != nil {
			done := g.hc.completed.Load()
			if g.resets > rapidResetLimit && g.resets > 2*done || g.instant > instantResetLimit && g.instant > done {
				return g.calm("rapid reset")
			}
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
		g.blockID, g.inBlock, g.blockN, g.listN, g.bad = id, true, 0, 0, false
		if err := g.decodeFragment(frag, flags.Has(http2.FlagHeadersEndHeaders)); err != nil {
			return err
		}
		if !g.admit(id) {
			return nil // dropped: the connection is going away
		}
	case http2.FrameContinuation:
		if !g.inBlock || id != g.blockID {
			g.decOK = false // x/net refuses this
			break
		}
		if err := g.decodeFragment(payload, flags.Has(http2.FlagContinuationEndHeaders)); err != nil {
			return err
		}
	case http2.FrameGoAway, http2.FramePushPromise:
	default:
		if err := g.count(budgetOther); err != nil {
			return err
		}
	}
	if g.draining.Load() {
		return nil // dropped
	}
	g.out = g.buf
	return nil
}

// ended maps a read error: after a GOAWAY of the guard's own, the end of
// the drain is the end of the connection.
func (g *h2guard) ended(err error) error {
	if g.draining.Load() && errors.Is(err, os.ErrDeadlineExceeded) {
		return io.EOF
	}
	return err
}

// admit records a HEADERS frame of stream id and reports whether it may
// reach x/net: not once the connection is going away.
func (g *h2guard) admit(id uint32) bool {
	g.smu.Lock()
	defer g.smu.Unlock()
	if g.draining.Load() {
		return false
	}
	if id > g.lastStream {
		g.lastStream = id
		g.win.streams++
		if g.hc != nil {
			g.hc.touch()
		}
	}
	return true
}

// count counts one frame of kind k in the current window and ends the
// connection when the kind is over its budget. The clock is read only
// when a count reaches its base allowance.
func (g *h2guard) count(k int) error {
	w := &g.win
	w.counts[k]++
	b := frameBudgets[k]
	if w.counts[k] <= b.base {
		return nil
	}
	allowed := b.base + b.perStream*w.streams + b.perDataOut*int(g.dataOut.Load()-w.dataOut)
	if w.counts[k] <= allowed {
		return nil
	}
	if now := time.Now(); now.Sub(w.start) >= time.Second {
		*w = frameWindow{start: now, dataOut: g.dataOut.Load()}
		w.counts[k] = 1
		return nil
	}
	return g.calm(budgetNames[k] + " flood")
}

// h2ListOverhead is what x/net adds to maxHeaderBytes for the size of a
// header list it accepts (ten fields' worth of the 32-byte per-field
// overhead of RFC 7541 §4.1).
const h2ListOverhead = 10 * 32

// decodeFragment decodes the next fragment of a header block as it
// arrives, refusing connection-specific fields (looked at as the decoder
// emits them, not collected) when the block is complete. A block that
// is continued beyond the header list size the server accepts is a
// CONTINUATION flood (CVE-2023-45288): it ends the connection with
// ENHANCE_YOUR_CALM at once (x/net would answer with a GOAWAY too, but
// close only a second later). A block too large in a single frame is
// left to x/net, which answers 431.
func (g *h2guard) decodeFragment(frag []byte, end bool) error {
	g.blockN += len(frag)
	if g.decOK {
		if _, err := g.dec.Write(frag); err != nil {
			g.decOK = false // x/net sees the same error and ends the connection
		}
	}
	if !end {
		if g.listN > g.maxHdr+h2ListOverhead || g.blockN > 2*g.maxHdr+maxGuardFrame {
			return g.calm("CONTINUATION flood")
		}
		return nil
	}
	g.inBlock = false
	if !g.decOK {
		return nil
	}
	if err := g.dec.Close(); err != nil {
		g.decOK = false
		return nil
	}
	if g.bad {
		return errMalformedH2
	}
	return nil
}

// emit looks at one decoded request field.
func (g *h2guard) emit(f hpack.HeaderField) {
	g.listN += int(f.Size())
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
