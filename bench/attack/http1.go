package attack

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"time"
)

// RawResult is what the proxy answered to raw bytes on one connection.
type RawResult struct {
	// Statuses are the status codes of the answers read, in order.
	Statuses []int `json:"statuses"`
	// Closed says the proxy closed the connection after them.
	Closed bool   `json:"closed"`
	Error  string `json:"error,omitempty"`
}

// Status is the first answer's status, 0 when there was none.
func (r RawResult) Status() int {
	if len(r.Statuses) == 0 {
		return 0
	}
	return r.Statuses[0]
}

// dialMaybeTLS dials addr, with TLS (no verification, ALPN http/1.1) when
// useTLS.
func dialMaybeTLS(ctx context.Context, addr string, useTLS bool) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	c, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("dial %s: %w", addr, err)
	}
	if !useTLS {
		return c, nil
	}
	tc := tls.Client(c, &tls.Config{InsecureSkipVerify: true, NextProtos: []string{"http/1.1"}, ServerName: "reliability.test"}) //nolint:gosec // a test tool
	if err := tc.HandshakeContext(ctx); err != nil {
		_ = c.Close()
		return nil, fmt.Errorf("tls %s: %w", addr, err)
	}
	return tc, nil
}

// Raw writes payload on a new connection to addr and reads answers until
// the proxy closes the connection or wait passes without one.
func Raw(ctx context.Context, addr string, payload []byte, wait time.Duration) RawResult {
	var res RawResult
	c, err := dialMaybeTLS(ctx, addr, false)
	if err != nil {
		res.Error = err.Error()
		return res
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(wait + 5*time.Second))
	if _, err := c.Write(payload); err != nil {
		res.Error = "write: " + err.Error()
	}
	br := bufio.NewReader(c)
	for range 16 {
		_ = c.SetReadDeadline(time.Now().Add(wait))
		resp, err := http.ReadResponse(br, nil)
		if err != nil {
			var ne net.Error
			switch {
			case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), strings.Contains(err.Error(), "reset"):
				res.Closed = true
			case errors.As(err, &ne) && ne.Timeout():
			default:
				res.Error = err.Error()
				res.Closed = true
			}
			return res
		}
		res.Statuses = append(res.Statuses, resp.StatusCode)
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		if resp.Close {
			res.Closed = true
			return res
		}
	}
	return res
}

// SmuggleCase is one request-smuggling payload. Payload holds the
// placeholders TAG (replaced by the case's front path) and SMUG (the path
// of the request smuggled inside it, which no backend may ever see).
type SmuggleCase struct {
	Name    string
	Payload string
}

// safe says whether a case ended safely: nothing smuggled, nothing the
// backend could not parse, and either refused (refused: a 4xx/5xx, or the
// HTTP/2 stream or connection ended) with nothing forwarded, or answered
// 2xx after exactly one well-formed request reached the backend.
func safe(r SmuggleResult, refused bool) bool {
	if r.Smuggled != 0 || r.Malformed != 0 {
		return false
	}
	return refused && r.BackendSaw == 0 || r.Status/100 == 2 && r.BackendSaw == 1
}

// H1SmuggleCorpus is the HTTP/1 corpus: CL.TE, TE.CL, TE.TE variants,
// duplicate, empty and odd Content-Lengths, obs-fold, bare LF and CR,
// underscores, leading CRLF.
func H1SmuggleCorpus() []SmuggleCase {
	inner := "GET SMUG HTTP/1.1\r\nHost: reliability.test\r\n\r\n"
	chunkedInner := fmt.Sprintf("%x\r\n%s\r\n0\r\n\r\n", len(inner), inner)
	clte := "0\r\n\r\n" + inner
	h := "POST TAG HTTP/1.1\r\nHost: reliability.test\r\n"
	withTE := func(name, te string) SmuggleCase {
		return SmuggleCase{Name: name, Payload: h + fmt.Sprintf("Content-Length: %d\r\n", len(clte)) + te + "\r\n" + clte}
	}
	return []SmuggleCase{
		{Name: "cl.te", Payload: h + fmt.Sprintf("Content-Length: %d\r\nTransfer-Encoding: chunked\r\n\r\n", len(clte)) + clte},
		{Name: "te.cl", Payload: h + "Content-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedInner},
		withTE("te.te duplicate TE", "Transfer-Encoding: chunked\r\nTransfer-Encoding: x\r\n"),
		withTE("te.te xchunked", "Transfer-Encoding: xchunked\r\n"),
		withTE("te.te space before colon", "Transfer-Encoding : chunked\r\n"),
		withTE("te.te tab value", "Transfer-Encoding:\tchunked\r\n"),
		withTE("te.te chunked, identity", "Transfer-Encoding: chunked, identity\r\n"),
		withTE("te.te identity, chunked", "Transfer-Encoding: identity, chunked\r\n"),
		withTE("te.te vertical tab", "Transfer-Encoding: \x0bchunked\r\n"),
		withTE("te.te obs-fold", "Transfer-Encoding:\r\n chunked\r\n"),
		withTE("te.te bare LF", "X-A: b\nTransfer-Encoding: chunked\r\n"),
		{Name: "te in HTTP/1.0", Payload: "POST TAG HTTP/1.0\r\nHost: reliability.test\r\nTransfer-Encoding: chunked\r\n\r\n" + chunkedInner},
		{Name: "cl differing duplicates", Payload: h + "Content-Length: 0\r\nContent-Length: " + fmt.Sprint(len(inner)) + "\r\n\r\n" + inner},
		{Name: "cl identical duplicates", Payload: h + "Content-Length: 2\r\nContent-Length: 2\r\n\r\nok"},
		{Name: "cl empty", Payload: h + "Content-Length: \r\n\r\n" + inner},
		{Name: "cl signed", Payload: h + fmt.Sprintf("Content-Length: +%d\r\n\r\n", len(inner)) + inner},
		{Name: "cl hex", Payload: h + "Content-Length: 0x10\r\n\r\n" + inner},
		{Name: "cl list", Payload: h + fmt.Sprintf("Content-Length: 0, %d\r\n\r\n", len(inner)) + inner},
		{Name: "cl space before colon", Payload: h + fmt.Sprintf("Content-Length : %d\r\n\r\n", len(inner)) + inner},
		{Name: "obs-fold", Payload: "GET TAG HTTP/1.1\r\nHost: reliability.test\r\nX-A: b\r\n c\r\n\r\n"},
		{Name: "bare LF line ends", Payload: "GET TAG HTTP/1.1\nHost: reliability.test\n\n"},
		{Name: "bare CR in value", Payload: "GET TAG HTTP/1.1\r\nHost: reliability.test\r\nX-A: b\rGET SMUG HTTP/1.1\r\n\r\n"},
		{Name: "NUL in value", Payload: "GET TAG HTTP/1.1\r\nHost: reliability.test\r\nX-A: b\x00c\r\n\r\n"},
		{Name: "chunk size bare LF", Payload: h + "Transfer-Encoding: chunked\r\n\r\n2\nok\r\n0\r\n\r\n"},
		{Name: "chunk size overflow", Payload: h + "Transfer-Encoding: chunked\r\n\r\n10000000000000002\r\nok\r\n0\r\n\r\n" + inner},
		{Name: "two Host", Payload: "GET TAG HTTP/1.1\r\nHost: reliability.test\r\nHost: other.test\r\n\r\n"},
		{Name: "underscore X_Forwarded_For", Payload: "GET TAG HTTP/1.1\r\nHost: reliability.test\r\nX_Forwarded_For: 203.0.113.9\r\n\r\n"},
		{Name: "leading CRLF", Payload: "\r\nGET TAG HTTP/1.1\r\nHost: reliability.test\r\n\r\n"},
	}
}

// SmuggleResult is the outcome of one smuggling case.
type SmuggleResult struct {
	Name   string `json:"name"`
	Status int    `json:"status"`
	// Answers is the number of answers on the connection; Closed whether
	// the proxy closed it.
	Answers int  `json:"answers"`
	Closed  bool `json:"closed"`
	// BackendSaw is the number of well-formed requests of the case the
	// backend parsed; Smuggled those of the smuggled inner request;
	// Malformed the connections the backend could not parse.
	BackendSaw int   `json:"backend_saw"`
	Smuggled   int   `json:"smuggled"`
	Malformed  int64 `json:"backend_malformed"`
	// Leaked names a header the backend received that the proxy might
	// have dropped or refused: "X_Forwarded_For" (reported, not counted
	// against OK: it is one well-formed request) or "X-Injected" (a
	// header injected through CR or LF in an HTTP/2 value: not OK).
	Leaked string `json:"leaked,omitempty"`
	// OK says the case ended safely (see safe).
	OK    bool   `json:"ok"`
	Error string `json:"error,omitempty"`
}

// RunSmuggle runs every case of corpus against the HTTP/1 listener addr
// whose real server is b, one connection each, one after the other. The
// paths of the case carry run, which must differ between runs on one
// backend.
func RunSmuggle(ctx context.Context, addr string, b *Backend, corpus []SmuggleCase, run string) []SmuggleResult {
	var out []SmuggleResult
	for i, c := range corpus {
		tag := fmt.Sprintf("/smug-%s-%02d-front", run, i)
		smug := fmt.Sprintf("/smug-%s-%02d-inner", run, i)
		payload := strings.ReplaceAll(strings.ReplaceAll(c.Payload, "TAG", tag), "SMUG", smug)
		if c.Name == "underscore X_Forwarded_For" {
			payload = strings.Replace(payload, tag, "/echo?x="+tag, 1)
		}
		before := b.Stats().Malformed
		r := Raw(ctx, addr, []byte(payload), time.Second)
		time.Sleep(50 * time.Millisecond)
		res := SmuggleResult{Name: c.Name, Status: r.Status(), Answers: len(r.Statuses), Closed: r.Closed,
			BackendSaw: b.Seen(tag), Smuggled: b.Seen(smug), Malformed: b.Stats().Malformed - before, Error: r.Error}
		if c.Name == "underscore X_Forwarded_For" && b.SawHeader("X_forwarded_for") {
			res.Leaked = "X_Forwarded_For"
		}
		res.OK = safe(res, res.Status >= 400)
		out = append(out, res)
	}
	return out
}

// HugeCase is one oversized request of the header-limits case.
type HugeCase struct {
	Name    string
	Request string
}

// HugeCorpus is the header and URI limits corpus: one header of 8, 16,
// 32 and 64 KiB, 200 headers, a 16 KiB URI.
func HugeCorpus() []HugeCase {
	one := func(kib int) string {
		return "GET /huge HTTP/1.1\r\nHost: reliability.test\r\nX-Big: " + strings.Repeat("a", kib<<10) + "\r\n\r\n"
	}
	var many strings.Builder
	many.WriteString("GET /huge HTTP/1.1\r\nHost: reliability.test\r\n")
	for i := range 200 {
		fmt.Fprintf(&many, "X-H%d: v\r\n", i)
	}
	many.WriteString("\r\n")
	return []HugeCase{
		{"header 8 KiB", one(8)},
		{"header 16 KiB", one(16)},
		{"header 32 KiB", one(32)},
		{"header 64 KiB", one(64)},
		{"200 headers", many.String()},
		{"URI 16 KiB", "GET /huge?" + strings.Repeat("q", 16<<10) + " HTTP/1.1\r\nHost: reliability.test\r\n\r\n"},
	}
}

// HugeResult is the outcome of one oversized request, sent reps times.
type HugeResult struct {
	Name     string      `json:"name"`
	Statuses map[int]int `json:"statuses"`
	Errors   int         `json:"errors"`
}

// RunHuge sends each case reps times (conc at once) to addr.
func RunHuge(ctx context.Context, addr string, corpus []HugeCase, reps, conc int) []HugeResult {
	var out []HugeResult
	for _, c := range corpus {
		res := HugeResult{Name: c.Name, Statuses: map[int]int{}}
		results := make(chan RawResult, reps)
		sem := make(chan struct{}, max(1, conc))
		for range reps {
			sem <- struct{}{}
			go func() {
				defer func() { <-sem }()
				results <- Raw(ctx, addr, []byte(c.Request), 2*time.Second)
			}()
		}
		for range reps {
			r := <-results
			if r.Status() == 0 {
				res.Errors++
			} else {
				res.Statuses[r.Status()]++
			}
		}
		out = append(out, res)
	}
	return out
}
