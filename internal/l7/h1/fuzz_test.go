package h1

import (
	"bufio"
	"bytes"
	"io"
	"net/http"
	"strings"
	"testing"
)

var requestSeeds = []string{
	"GET / HTTP/1.1\r\nHost: a\r\n\r\n",
	"POST /x?y HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\nhello",
	"POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n",
	"GET http://b:1/p HTTP/1.1\r\nHost: a\r\nConnection: close, X-A\r\nX-A: 1\r\n\r\n",
	"GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n",
	"POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n",
	"GET / HTTP/1.1\r\nHost: a\r\nX: b\r\n c\r\n\r\n",
	"GET /ws HTTP/1.1\r\nHost: a\r\nConnection: upgrade\r\nUpgrade: websocket\r\n\r\n",
}

// FuzzParseRequest checks that the request parser never panics, and that
// whatever it accepts net/http's parser accepts too, with the same method,
// target, host and body framing (differential test: Fulcrum may be
// stricter than net/http, never more lenient).
func FuzzParseRequest(f *testing.F) {
	for _, s := range requestSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, _ := HeadEnd(data, 0)
		if n < 0 {
			return
		}
		h := new(Head)
		if err := h.ParseRequest(data[:n], Limits{MaxFields: 100, MaxTarget: 8192}); err != nil {
			return
		}
		if h.Target[0] != '/' {
			return // OPTIONS *
		}
		req, err := http.ReadRequest(bufio.NewReader(bytes.NewReader(data[:n])))
		if err != nil {
			t.Fatalf("Fulcrum accepted what net/http rejects (%v): %q", err, data[:n])
		}
		if req.Method != string(h.Method) {
			t.Fatalf("method %q vs net/http %q", h.Method, req.Method)
		}
		if !strings.Contains(req.RequestURI, string(h.Target)) {
			t.Fatalf("target %q vs net/http %q", h.Target, req.RequestURI)
		}
		if req.Host != string(h.Host) {
			t.Fatalf("host %q vs net/http %q", h.Host, req.Host)
		}
		chunked := len(req.TransferEncoding) > 0 && req.TransferEncoding[0] == "chunked"
		if chunked != h.Chunked {
			t.Fatalf("chunked %v vs net/http %v", h.Chunked, chunked)
		}
		cl := h.ContentLength
		if cl < 0 && !h.Chunked {
			cl = 0
		}
		if !h.Chunked && req.ContentLength != cl {
			t.Fatalf("content-length %d vs net/http %d", h.ContentLength, req.ContentLength)
		}
		if req.Close != h.Close {
			t.Fatalf("close %v vs net/http %v", h.Close, req.Close)
		}
	})
}

// FuzzParseResponse checks that the response parser never panics and
// that its framing agrees with net/http's on what both accept.
func FuzzParseResponse(f *testing.F) {
	for _, s := range []string{
		"HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\nabc",
		"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n",
		"HTTP/1.0 204 No Content\r\nConnection: keep-alive\r\n\r\n",
		"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n",
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		n, _ := HeadEnd(data, 0)
		if n < 0 {
			return
		}
		h := new(Head)
		if err := h.ParseResponse(data[:n], 100); err != nil {
			return
		}
		resp, err := http.ReadResponse(bufio.NewReader(bytes.NewReader(data[:n])), nil)
		if err != nil {
			return // net/http is stricter on some responses (e.g. 1xx with a body); Fulcrum answers 502 on framing it cannot read
		}
		if resp.StatusCode != h.Status {
			t.Fatalf("status %d vs net/http %d", h.Status, resp.StatusCode)
		}
	})
}

// FuzzChunked checks that the chunked decoder never panics or loops, that
// it only yields as much data as the sizes announce, and that re-encoding
// what it decoded decodes to the same bytes.
func FuzzChunked(f *testing.F) {
	for _, s := range []string{"5\r\nhello\r\n0\r\n\r\n", "1;a=b\r\nx\r\n0\r\nT: v\r\n\r\n", "0\r\n\r\n", "ffffffff\r\n"} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		got, c, err := readChunked(t, string(data), 1024)
		if err != nil {
			return
		}
		if len(got) > len(data) {
			t.Fatalf("decoded %d bytes from %d", len(got), len(data))
		}
		var buf bytes.Buffer
		w := bufio.NewWriter(&buf)
		_ = WriteChunk(w, []byte(got))
		_ = WriteLastChunk(w, c.Trailers)
		_ = w.Flush()
		again, _, err := readChunked(t, buf.String(), 2048)
		if err != nil || again != got {
			t.Fatalf("re-encoded body does not round-trip: %v", err)
		}
		// net/http's decoder must agree on valid input.
		body, err := io.ReadAll(io.LimitReader(newStdChunked(buf.String()), int64(len(got))+1))
		if err != nil || string(body) != got {
			t.Fatalf("net/http reads %q (%v), Fulcrum %q", body, err, got)
		}
	})
}

// newStdChunked reads a chunked body with net/http's decoder, through a
// response whose Transfer-Encoding is chunked.
func newStdChunked(s string) io.Reader {
	resp, err := http.ReadResponse(bufio.NewReader(strings.NewReader("HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"+s)), nil)
	if err != nil {
		return strings.NewReader("")
	}
	return resp.Body
}
