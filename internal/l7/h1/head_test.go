package h1

import (
	"bufio"
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
)

var testLimits = Limits{MaxFields: 100, MaxTarget: 8192}

func parseReq(t testing.TB, s string) (*Head, error) {
	t.Helper()
	n, _ := HeadEnd([]byte(s), 0)
	if n < 0 {
		return nil, ErrIncomplete
	}
	h := new(Head)
	return h, h.ParseRequest([]byte(s[:n]), testLimits)
}

func TestParseRequestValid(t *testing.T) {
	tests := []struct {
		name, in  string
		method    string
		target    string
		host      string
		cl        int64
		chunked   bool
		close     bool
		upgrade   string
		expect100 bool
	}{
		{"simple", "GET / HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/", "a", -1, false, false, "", false},
		{"query and port", "GET /x?y=1 HTTP/1.1\r\nHost: a:80\r\n\r\n", "GET", "/x?y=1", "a:80", -1, false, false, "", false},
		{"cl", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\n\r\n", "POST", "/", "a", 5, false, false, "", false},
		{"identical cl twice", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 5\r\n\r\n", "POST", "/", "a", 5, false, false, "", false},
		{"chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: Chunked\r\n\r\n", "POST", "/", "a", -1, true, false, "", false},
		{"close", "GET / HTTP/1.1\r\nHost: a\r\nConnection: close\r\n\r\n", "GET", "/", "a", -1, false, true, "", false},
		{"http10", "GET / HTTP/1.0\r\n\r\n", "GET", "/", "", -1, false, true, "", false},
		{"http10 keepalive", "GET / HTTP/1.0\r\nConnection: keep-alive\r\n\r\n", "GET", "/", "", -1, false, false, "", false},
		{"upgrade", "GET /ws HTTP/1.1\r\nHost: a\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n", "GET", "/ws", "a", -1, false, false, "websocket", false},
		{"upgrade without token", "GET /ws HTTP/1.1\r\nHost: a\r\nUpgrade: websocket\r\n\r\n", "GET", "/ws", "a", -1, false, false, "", false},
		{"expect", "PUT / HTTP/1.1\r\nHost: a\r\nExpect: 100-Continue\r\nContent-Length: 1\r\n\r\n", "PUT", "/", "a", 1, false, false, "", true},
		{"absolute form", "GET http://b.example:8080/p?q HTTP/1.1\r\nHost: a\r\n\r\n", "GET", "/p?q", "b.example:8080", -1, false, false, "", false},
		{"absolute form query only", "GET http://b?q=1 HTTP/1.1\r\nHost: b\r\n\r\n", "GET", "/?q=1", "b", -1, false, false, "", false},
		{"options star", "OPTIONS * HTTP/1.1\r\nHost: a\r\n\r\n", "OPTIONS", "*", "a", -1, false, false, "", false},
		{"ipv6 host", "GET / HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n", "GET", "/", "[::1]:8080", -1, false, false, "", false},
		{"ows trimmed", "GET / HTTP/1.1\r\nHost: \t a \t\r\n\r\n", "GET", "/", "a", -1, false, false, "", false},
		{"obs-text value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: caf\xc3\xa9\r\n\r\n", "GET", "/", "a", -1, false, false, "", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h, err := parseReq(t, tt.in)
			if err != nil {
				t.Fatalf("parse: %v", err)
			}
			if string(h.Method) != tt.method || string(h.Target) != tt.target || string(h.Host) != tt.host ||
				h.ContentLength != tt.cl || h.Chunked != tt.chunked || h.Close != tt.close ||
				string(h.Upgrade) != tt.upgrade || h.Expect100 != tt.expect100 {
				t.Errorf("got method=%q target=%q host=%q cl=%d chunked=%v close=%v upgrade=%q expect=%v",
					h.Method, h.Target, h.Host, h.ContentLength, h.Chunked, h.Close, h.Upgrade, h.Expect100)
			}
		})
	}
}

// TestParseRequestAttacks covers the request classes of reliability.md §2
// that the parser itself must refuse: each gets the status the proxy sends
// before closing the connection.
func TestParseRequestAttacks(t *testing.T) {
	long := strings.Repeat("a", 9000)
	tests := []struct {
		name, in string
		want     *Error
	}{
		{"CL.TE", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n", ErrCLAndTE},
		{"TE.CL", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nContent-Length: 6\r\n\r\n", ErrCLAndTE},
		{"TE chunked twice", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked, chunked\r\n\r\n", ErrUnsupportedTE},
		{"TE two headers", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", ErrBadTE},
		{"TE identity", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: identity\r\n\r\n", ErrBadTE},
		{"TE gzip chunked", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", ErrUnsupportedTE},
		{"TE leading CR", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \rchunked\r\n\r\n", ErrBareCR},
		{"TE vertical tab", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding: \x0bchunked\r\n\r\n", ErrBadFieldValue},
		{"TE in 1.0", "POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n", ErrTEIn10},
		{"TE space before colon", "POST / HTTP/1.1\r\nHost: a\r\nTransfer-Encoding : chunked\r\n\r\n", ErrBadFieldName},
		{"CL differing", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5\r\nContent-Length: 6\r\n\r\n", ErrConflictingCL},
		{"CL empty", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: \r\n\r\n", ErrBadCL},
		{"CL signed", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: +5\r\n\r\n", ErrBadCL},
		{"CL negative", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: -1\r\n\r\n", ErrBadCL},
		{"CL hex", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 0x10\r\n\r\n", ErrBadCL},
		{"CL underscore", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1_0\r\n\r\n", ErrBadCL},
		{"CL inner space", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 1 0\r\n\r\n", ErrBadCL},
		{"CL list", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 5, 5\r\n\r\n", ErrBadCL},
		{"CL huge", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length: 99999999999999999999\r\n\r\n", ErrBadCL},
		{"CL space before colon", "POST / HTTP/1.1\r\nHost: a\r\nContent-Length : 5\r\n\r\n", ErrBadFieldName},
		{"empty name", "GET / HTTP/1.1\r\nHost: a\r\n: x\r\nContent-Length: 5\r\n\r\n", ErrBadFieldName},
		{"no colon", "GET / HTTP/1.1\r\nHost: a\r\nfoo\r\n\r\n", ErrBadFieldName},
		{"obs-fold", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n c\r\n\r\n", ErrObsFold},
		{"obs-fold tab", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\r\n\tc\r\n\r\n", ErrObsFold},
		{"bare LF in fields", "GET / HTTP/1.1\r\nHost: a\nX-A: b\r\n\r\n", ErrBareLF},
		{"bare LF request line", "GET / HTTP/1.1\nHost: a\r\n\r\n", ErrBareLF},
		{"bare LF end", "GET / HTTP/1.1\r\nHost: a\n\n", ErrBareLF},
		{"bare CR in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\rc\r\n\r\n", ErrBareCR},
		{"bare CR in request line", "GET /\r HTTP/1.1\r\nHost: a\r\n\r\n", ErrBareCR},
		{"NUL in value", "GET / HTTP/1.1\r\nHost: a\r\nX-A: b\x00c\r\n\r\n", ErrBadFieldValue},
		{"NUL in name", "GET / HTTP/1.1\r\nHost: a\r\nX\x00A: b\r\n\r\n", ErrBadFieldName},
		{"NUL in target", "GET /\x00 HTTP/1.1\r\nHost: a\r\n\r\n", ErrBadTarget},
		{"fragment in target", "GET /a#b HTTP/1.1\r\nHost: a\r\n\r\n", ErrBadTarget},
		{"non-ascii target", "GET /\xc3\xa9 HTTP/1.1\r\nHost: a\r\n\r\n", ErrBadTarget},
		{"no host", "GET / HTTP/1.1\r\n\r\n", ErrNoHost},
		{"two hosts", "GET / HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", ErrDupHost},
		{"bad host", "GET / HTTP/1.1\r\nHost: a/b\r\n\r\n", ErrBadHost},
		{"host with userinfo", "GET / HTTP/1.1\r\nHost: u@a\r\n\r\n", ErrBadHost},
		{"host bad port", "GET / HTTP/1.1\r\nHost: a:8x\r\n\r\n", ErrBadHost},
		{"absolute with userinfo", "GET http://u@a/ HTTP/1.1\r\nHost: a\r\n\r\n", ErrBadTarget},
		{"relative target", "GET a/b HTTP/1.1\r\nHost: a\r\n\r\n", ErrBadTarget},
		{"star not options", "GET * HTTP/1.1\r\nHost: a\r\n\r\n", ErrBadTarget},
		{"leading empty line", "\r\nGET / HTTP/1.1\r\nHost: a\r\n\r\n", ErrBadRequestLine},
		{"connect", "CONNECT a:443 HTTP/1.1\r\nHost: a\r\n\r\n", ErrConnect},
		{"http 2.0", "GET / HTTP/2.0\r\nHost: a\r\n\r\n", ErrVersion},
		{"http 1.2", "GET / HTTP/1.2\r\nHost: a\r\n\r\n", ErrVersion},
		{"bad version", "GET / HTTX/1.1\r\nHost: a\r\n\r\n", ErrBadVersion},
		{"lower version", "GET / http/1.1\r\nHost: a\r\n\r\n", ErrBadVersion},
		{"double space", "GET  / HTTP/1.1\r\nHost: a\r\n\r\n", ErrBadTarget},
		{"bad method", "G(T / HTTP/1.1\r\nHost: a\r\n\r\n", ErrBadMethod},
		{"expect other", "PUT / HTTP/1.1\r\nHost: a\r\nExpect: foo\r\n\r\n", ErrExpectation},
		{"bad connection token", "GET / HTTP/1.1\r\nHost: a\r\nConnection: a b\r\n\r\n", ErrBadConnection},
		{"long uri", "GET /" + long + " HTTP/1.1\r\nHost: a\r\n\r\n", ErrURITooLong},
		{"too many fields", "GET / HTTP/1.1\r\nHost: a\r\n" + strings.Repeat("X-A: b\r\n", 100) + "\r\n", ErrTooManyFields},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := parseReq(t, tt.in)
			var pe *Error
			if !errors.As(err, &pe) || pe != tt.want {
				t.Fatalf("got %v, want %v", err, tt.want)
			}
		})
	}
}

func TestHopByHop(t *testing.T) {
	h, err := parseReq(t, "GET / HTTP/1.1\r\nHost: a\r\nConnection: X-Forwarded-For, keep-alive, Cookie\r\n"+
		"X-Forwarded-For: 1.2.3.4\r\nCookie: a=b\r\nKeep-Alive: 5\r\nProxy-Connection: x\r\nTE: trailers\r\n"+
		"X-Keep: 1\r\nUpgrade: h2c\r\nHTTP2-Settings: AAA\r\n\r\n")
	if err != nil {
		t.Fatal(err)
	}
	var kept []string
	for _, f := range h.Fields {
		if !f.Hop {
			kept = append(kept, string(f.Name))
		}
	}
	if got := strings.Join(kept, ","); got != "X-Keep" {
		t.Errorf("kept %q, want X-Keep only", got)
	}
	if !h.TrailersOK || h.Upgrade != nil {
		t.Errorf("trailersOK=%v upgrade=%q", h.TrailersOK, h.Upgrade)
	}
}

func TestHeadEndIncremental(t *testing.T) {
	msg := "GET / HTTP/1.1\r\nHost: a\r\nX: y\r\n\r\nNEXT"
	want := len(msg) - 4
	for split := 0; split <= len(msg); split++ {
		n, next := HeadEnd([]byte(msg[:split]), 0)
		if split < want {
			if n >= 0 {
				t.Fatalf("split %d: found end %d early", split, n)
			}
			n, _ = HeadEnd([]byte(msg), next)
		}
		if n != want {
			t.Fatalf("split %d: end %d, want %d", split, n, want)
		}
	}
}

func TestParseResponse(t *testing.T) {
	tests := []struct {
		name, in string
		status   int
		cl       int64
		chunked  bool
		close    bool
		err      bool
	}{
		{"cl", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\n\r\n", 200, 3, false, false, false},
		{"no reason", "HTTP/1.1 204\r\n\r\n", 204, -1, false, false, false},
		{"chunked", "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n", 200, -1, true, false, false},
		{"te and cl", "HTTP/1.1 200 OK\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 200, -1, true, true, false},
		{"close", "HTTP/1.1 200 OK\r\nConnection: close\r\n\r\n", 200, -1, false, true, false},
		{"1.0", "HTTP/1.0 200 OK\r\n\r\n", 200, -1, false, true, false},
		{"bad status", "HTTP/1.1 20 OK\r\n\r\n", 0, 0, false, false, true},
		{"status 600", "HTTP/1.1 600 X\r\n\r\n", 0, 0, false, false, true},
		{"bad cl", "HTTP/1.1 200 OK\r\nContent-Length: x\r\n\r\n", 0, 0, false, false, true},
		{"nul reason", "HTTP/1.1 200 O\x00K\r\n\r\n", 0, 0, false, false, true},
		{"bare lf", "HTTP/1.1 200 OK\nX: y\r\n\r\n", 0, 0, false, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := new(Head)
			n, _ := HeadEnd([]byte(tt.in), 0)
			err := h.ParseResponse([]byte(tt.in[:n]), 100)
			if tt.err {
				if err == nil {
					t.Fatal("no error")
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if h.Status != tt.status || h.ContentLength != tt.cl || h.Chunked != tt.chunked || h.Close != tt.close {
				t.Errorf("status=%d cl=%d chunked=%v close=%v", h.Status, h.ContentLength, h.Chunked, h.Close)
			}
		})
	}
}

func readChunked(t testing.TB, in string, maxTrailer int) (string, *ChunkedReader, error) {
	t.Helper()
	c := new(ChunkedReader)
	c.Reset(bufio.NewReaderSize(strings.NewReader(in), 64), maxTrailer)
	var out bytes.Buffer
	for range 10000 {
		b, err := c.Next()
		out.Write(b)
		if err != nil {
			if err == io.EOF {
				return out.String(), c, nil
			}
			return out.String(), c, err
		}
	}
	t.Fatal("chunked reader did not end")
	return "", nil, nil
}

func TestChunked(t *testing.T) {
	tests := []struct {
		name, in, want string
		err            error
	}{
		{"simple", "5\r\nhello\r\n0\r\n\r\n", "hello", nil},
		{"ext", "5;a=b\r\nhello\r\n6 ; x\r\n world\r\n0\r\n\r\n", "hello world", nil},
		{"upper hex", "A\r\n0123456789\r\n0\r\n\r\n", "0123456789", nil},
		{"trailers", "1\r\nx\r\n0\r\nX-T: 1\r\n\r\n", "x", nil},
		{"bare LF size", "5\nhello\r\n0\r\n\r\n", "", ErrBareLF},
		{"bare LF after data", "5\r\nhello\n0\r\n\r\n", "hello", ErrBadChunk},
		{"CR in ext", "5;a\rb\r\nhello\r\n0\r\n\r\n", "", ErrBareCR},
		{"no size", "\r\nhello\r\n0\r\n\r\n", "", ErrBadChunk},
		{"negative", "-5\r\nhello\r\n0\r\n\r\n", "", ErrBadChunk},
		{"0x prefix", "0x5\r\nhello\r\n0\r\n\r\n", "", ErrBadChunk},
		{"space in size", "5 5\r\nhello\r\n0\r\n\r\n", "", ErrBadChunk},
		{"too large", "10000000000000000\r\n", "", ErrChunkTooLarge},
		{"data too long", "2\r\nhello\r\n0\r\n\r\n", "he", ErrBadChunk},
		{"truncated", "5\r\nhel", "hel", io.ErrUnexpectedEOF},
		{"trailer obs-fold", "0\r\nX-T: 1\r\n 2\r\n\r\n", "", ErrObsFold},
		{"trailer bad", "0\r\n: 1\r\n\r\n", "", ErrBadTrailerName},
		{"trailer too large", "0\r\nX-T: " + strings.Repeat("a", 100) + "\r\n\r\n", "", ErrTrailerTooLarge},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, c, err := readChunked(t, tt.in, 64)
			if !errors.Is(err, tt.err) {
				t.Fatalf("err = %v, want %v", err, tt.err)
			}
			if got != tt.want {
				t.Errorf("body %q, want %q", got, tt.want)
			}
			if tt.name == "trailers" && (len(c.Trailers) != 1 || string(c.Trailers[0].Value) != "1") {
				t.Errorf("trailers = %+v", c.Trailers)
			}
		})
	}
}

func TestChunkWriteRoundTrip(t *testing.T) {
	var buf bytes.Buffer
	w := bufio.NewWriter(&buf)
	_ = WriteChunk(w, []byte("hello "))
	_ = WriteChunk(w, nil)
	_ = WriteChunk(w, []byte(strings.Repeat("z", 300)))
	_ = WriteLastChunk(w, []Field{{Name: []byte("X-T"), Value: []byte("v")}, {Name: []byte("Content-Length"), Value: []byte("1"), Hop: true}})
	_ = w.Flush()
	got, c, err := readChunked(t, buf.String(), 1024)
	if err != nil || got != "hello "+strings.Repeat("z", 300) {
		t.Fatalf("got %q, %v", got, err)
	}
	if len(c.Trailers) != 1 || string(c.Trailers[0].Name) != "X-T" {
		t.Errorf("trailers %+v", c.Trailers)
	}
}

func TestParseAllocs(t *testing.T) {
	req := []byte("GET /index.html?a=b HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: bench\r\nAccept: */*\r\nCookie: a=b\r\nConnection: keep-alive\r\n\r\n")
	h := new(Head)
	_ = h.ParseRequest(req, testLimits)
	allocs := testing.AllocsPerRun(100, func() {
		if err := h.ParseRequest(req, testLimits); err != nil {
			t.Fatal(err)
		}
	})
	if allocs != 0 {
		t.Errorf("ParseRequest allocates %.1f times per request, want 0", allocs)
	}
}

func BenchmarkParseRequest(b *testing.B) {
	req := []byte("GET /index.html?a=b HTTP/1.1\r\nHost: www.example.com\r\nUser-Agent: Mozilla/5.0 (X11; Linux x86_64)\r\nAccept: text/html,application/xhtml+xml\r\nAccept-Language: en-US,en;q=0.5\r\nAccept-Encoding: gzip, deflate\r\nCookie: session=abcdef0123456789\r\nConnection: keep-alive\r\n\r\n")
	h := new(Head)
	b.ReportAllocs()
	b.SetBytes(int64(len(req)))
	for b.Loop() {
		n, _ := HeadEnd(req, 0)
		if err := h.ParseRequest(req[:n], testLimits); err != nil {
			b.Fatal(err)
		}
	}
}

// TestCtlFree checks the word-at-a-time control character test against
// the byte loop it replaces, for every byte value at every position.
func TestCtlFree(t *testing.T) {
	ref := func(v []byte) bool {
		for _, c := range v {
			if c < ' ' && c != '\t' || c == 0x7f {
				return false
			}
		}
		return true
	}
	for n := 1; n <= 19; n++ {
		for _, fill := range []byte{'a', 0x80, 0xff, ' ', '\t', '~'} {
			for pos := range n {
				for c := range 256 {
					v := bytes.Repeat([]byte{fill}, n)
					v[pos] = byte(c)
					if got, want := ctlFree(v), ref(v); got != want {
						t.Fatalf("ctlFree(%q) = %v, want %v", v, got, want)
					}
				}
			}
		}
	}
}
