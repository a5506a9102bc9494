package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strconv"
)

// MaxChunkLine is the longest chunk-size line (size and extensions).
const MaxChunkLine = 4096

// CopyN copies exactly n bytes from r to w through r's own buffer, without
// allocating. A short body is io.ErrUnexpectedEOF.
func CopyN(w io.Writer, r *bufio.Reader, n int64) (int64, error) {
	var done int64
	for done < n {
		if r.Buffered() == 0 {
			if _, err := r.Peek(1); err != nil {
				return done, eofUnexpected(err)
			}
		}
		b, _ := r.Peek(int(min(int64(r.Buffered()), n-done)))
		m, err := w.Write(b)
		_, _ = r.Discard(m)
		done += int64(m)
		if err != nil {
			return done, err
		}
	}
	return done, nil
}

// CopyAll copies r to w until r ends, through r's own buffer; a clean end
// of input is not an error.
func CopyAll(w io.Writer, r *bufio.Reader) (int64, error) {
	var done int64
	for {
		if r.Buffered() == 0 {
			if _, err := r.Peek(1); err != nil {
				if err == io.EOF {
					return done, nil
				}
				return done, err
			}
		}
		b, _ := r.Peek(r.Buffered())
		m, err := w.Write(b)
		_, _ = r.Discard(m)
		done += int64(m)
		if err != nil {
			return done, err
		}
	}
}

func eofUnexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// ChunkedReader decodes a chunked body strictly: sizes are 1-16 hex
// digits, every line ends with CRLF, extensions hold no control
// characters, data is followed by CRLF, and the trailer section is bounded
// and parsed like a header section. Reuse one per connection with Reset.
type ChunkedReader struct {
	r          *bufio.Reader
	left       int64
	needCRLF   bool
	done       bool
	maxTrailer int
	tbuf       []byte
	// Trailers are the trailer fields, valid after Next returned io.EOF
	// and until the next Reset.
	Trailers []Field
}

// Reset prepares c to read a new body from r, with trailer sections of at
// most maxTrailer bytes.
func (c *ChunkedReader) Reset(r *bufio.Reader, maxTrailer int) {
	*c = ChunkedReader{r: r, maxTrailer: maxTrailer, tbuf: c.tbuf[:0], Trailers: c.Trailers[:0]}
}

// Next returns the next piece of body data. The slice aliases the
// reader's buffer and is valid until the next call. After the last chunk
// and the trailer section it returns io.EOF; a malformed body returns an
// *Error, a truncated one io.ErrUnexpectedEOF.
func (c *ChunkedReader) Next() ([]byte, error) {
	r := c.r
	for {
		switch {
		case c.done:
			return nil, io.EOF
		case c.left > 0:
			if r.Buffered() == 0 {
				if _, err := r.Peek(1); err != nil {
					return nil, eofUnexpected(err)
				}
			}
			n := int(min(int64(r.Buffered()), c.left))
			b, _ := r.Peek(n)
			_, _ = r.Discard(n)
			c.left -= int64(n)
			if c.left == 0 {
				c.needCRLF = true
			}
			return b, nil
		case c.needCRLF:
			b, err := r.Peek(2)
			if err != nil {
				return nil, eofUnexpected(err)
			}
			if b[0] != '\r' || b[1] != '\n' {
				return nil, ErrBadChunk
			}
			_, _ = r.Discard(2)
			c.needCRLF = false
		default:
			size, err := c.sizeLine()
			if err != nil {
				return nil, err
			}
			if size == 0 {
				if err := c.trailers(); err != nil {
					return nil, err
				}
				c.done = true
				return nil, io.EOF
			}
			c.left = size
		}
	}
}

// readLine reads one CRLF-terminated line of at most limit bytes and
// returns it without the CRLF. It aliases the reader's buffer.
func readLine(r *bufio.Reader, limit int) ([]byte, error) {
	line, err := r.ReadSlice('\n')
	if err != nil {
		if errors.Is(err, bufio.ErrBufferFull) {
			return nil, ErrBadChunk
		}
		return nil, eofUnexpected(err)
	}
	if len(line) > limit {
		return nil, ErrBadChunk
	}
	if len(line) < 2 || line[len(line)-2] != '\r' {
		return nil, ErrBareLF
	}
	line = line[:len(line)-2]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, ErrBareCR
	}
	return line, nil
}

func (c *ChunkedReader) sizeLine() (int64, error) {
	line, err := readLine(c.r, MaxChunkLine)
	if err != nil {
		return 0, err
	}
	var n int64
	i := 0
	for ; i < len(line) && isHex(line[i]); i++ {
		if i >= 15 {
			return 0, ErrChunkTooLarge
		}
		n = n<<4 | int64(unhex(line[i]))
	}
	if i == 0 {
		return 0, ErrBadChunk
	}
	ext := line[i:]
	if len(ext) > 0 {
		t := ext
		for len(t) > 0 && (t[0] == ' ' || t[0] == '\t') {
			t = t[1:]
		}
		if len(t) == 0 || t[0] != ';' {
			return 0, ErrBadChunk
		}
		for _, ch := range ext {
			if ch < ' ' && ch != '\t' || ch == 0x7f {
				return 0, ErrBadChunk
			}
		}
	}
	return n, nil
}

func unhex(c byte) byte {
	switch {
	case c <= '9':
		return c - '0'
	case c >= 'a':
		return c - 'a' + 10
	}
	return c - 'A' + 10
}

// trailers reads the trailer section that ends a chunked body.
func (c *ChunkedReader) trailers() error {
	if cap(c.tbuf) < c.maxTrailer {
		c.tbuf = make([]byte, 0, c.maxTrailer)
	}
	total := 0
	for {
		line, err := readLine(c.r, MaxChunkLine)
		if err != nil {
			if err == ErrBadChunk {
				return ErrTrailerTooLarge
			}
			return err
		}
		if len(line) == 0 {
			return nil
		}
		total += len(line) + 2
		if total > c.maxTrailer {
			return ErrTrailerTooLarge
		}
		if line[0] == ' ' || line[0] == '\t' {
			return ErrObsFold
		}
		start := len(c.tbuf)
		c.tbuf = append(c.tbuf, line...) // within capacity: no reallocation
		f, err := parseField(c.tbuf[start:])
		if err != nil {
			return ErrBadTrailerName
		}
		switch f.Kind {
		case KindContentLength, KindTransferEncoding, KindHost, KindConnection, KindTE, KindTrailer,
			KindKeepAlive, KindProxyConnection, KindUpgrade, KindProxyAuthenticate, KindProxyAuthorization:
			f.Hop = true // framing, routing and hop-by-hop fields are not allowed in trailers
		}
		c.Trailers = append(c.Trailers, f)
	}
}

// WriteChunk writes b as one chunk; an empty b writes nothing (a zero-size
// chunk would end the body).
func WriteChunk(w *bufio.Writer, b []byte) error {
	if len(b) == 0 {
		return nil
	}
	hdr := strconv.AppendUint(w.AvailableBuffer(), uint64(len(b)), 16)
	hdr = append(hdr, '\r', '\n')
	if _, err := w.Write(hdr); err != nil {
		return err
	}
	if _, err := w.Write(b); err != nil {
		return err
	}
	_, err := w.WriteString("\r\n")
	return err
}

// WriteLastChunk ends a chunked body: the zero-size chunk, the trailer
// fields that are not Hop, and the empty line.
func WriteLastChunk(w *bufio.Writer, trailers []Field) error {
	_, _ = w.WriteString("0\r\n")
	for _, f := range trailers {
		if f.Hop {
			continue
		}
		_, _ = w.Write(f.Name)
		_, _ = w.WriteString(": ")
		_, _ = w.Write(f.Value)
		_, _ = w.WriteString("\r\n")
	}
	_, err := w.WriteString("\r\n")
	return err
}

// ChunkWriter adapts WriteChunk to io.Writer.
type ChunkWriter struct {
	// W receives the chunks.
	W *bufio.Writer
}

// Write implements io.Writer.
func (c ChunkWriter) Write(b []byte) (int, error) {
	if err := WriteChunk(c.W, b); err != nil {
		return 0, err
	}
	return len(b), nil
}
