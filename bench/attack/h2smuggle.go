package attack

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/net/http2"
	"golang.org/x/net/http2/hpack"
)

// H2Case is one malformed HTTP/2 request for the h2→h1 smuggling corpus.
// Fields are name/value pairs sent as is (TAG and SMUG are replaced as in
// SmuggleCase); Body, when set, follows in one DATA frame.
type H2Case struct {
	Name   string
	Fields []string
	Body   string
	// Accept says the request is valid and must reach the backend once.
	Accept bool
}

// H2SmuggleCorpus is the h2→h1 corpus: two different content-lengths, a
// content-length the DATA contradicts, connection-specific fields, CR, LF
// and NUL in values and in :path, and two valid controls.
func H2SmuggleCorpus() []H2Case {
	inner := "GET SMUG HTTP/1.1\r\nHost: reliability.test\r\n\r\n"
	base := func(method string, extra ...string) []string {
		return append([]string{":method", method, ":scheme", "https", ":authority", "reliability.test", ":path", "TAG"}, extra...)
	}
	return []H2Case{
		{Name: "control GET", Fields: base("GET"), Accept: true},
		{Name: "control POST", Fields: base("POST", "content-length", "5"), Body: "hello", Accept: true},
		{Name: "two different content-length", Fields: base("POST", "content-length", "5", "content-length", strconv.Itoa(5+len(inner))), Body: "hello" + inner},
		{Name: "content-length below DATA", Fields: base("POST", "content-length", "5"), Body: "hello" + inner},
		{Name: "connection: keep-alive", Fields: base("GET", "connection", "keep-alive")},
		{Name: "transfer-encoding: chunked", Fields: base("POST", "transfer-encoding", "chunked"), Body: "0\r\n\r\n" + inner},
		{Name: "te: gzip", Fields: base("GET", "te", "gzip")},
		{Name: "upgrade: websocket", Fields: base("GET", "upgrade", "websocket")},
		{Name: "keep-alive", Fields: base("GET", "keep-alive", "timeout=5")},
		{Name: "proxy-connection", Fields: base("GET", "proxy-connection", "keep-alive")},
		{Name: "CRLF in value", Fields: base("GET", "x-a", "b\r\n\r\n"+inner)},
		{Name: "LF in value", Fields: base("GET", "x-a", "b\nX-Injected: 1")},
		{Name: "NUL in value", Fields: base("GET", "x-a", "b\x00c")},
		{Name: "CRLF in :path", Fields: []string{":method", "GET", ":scheme", "https", ":authority", "reliability.test",
			":path", "TAG HTTP/1.1\r\nHost: reliability.test\r\n\r\nGET SMUG"}},
		{Name: "space in :path", Fields: []string{":method", "GET", ":scheme", "https", ":authority", "reliability.test", ":path", "TAG HTTP/1.1"}},
		{Name: "uppercase field name", Fields: base("GET", "X-Upper", "1")},
		{Name: "pseudo-header after regular", Fields: []string{":method", "GET", ":scheme", "https", "x-a", "b", ":authority", "reliability.test", ":path", "TAG"}},
		{Name: "CRLF in :authority", Fields: []string{":method", "GET", ":scheme", "https", ":authority", "reliability.test\r\nX-Injected: 1", ":path", "TAG"}},
	}
}

// RunH2Smuggle runs each case on its own HTTP/2 connection to addr (TLS,
// ALPN h2) whose real server is b; run is as for RunSmuggle.
func RunH2Smuggle(ctx context.Context, addr string, b *Backend, corpus []H2Case, run string) []SmuggleResult {
	var out []SmuggleResult
	for i, c := range corpus {
		tag := fmt.Sprintf("/h2smug-%s-%02d-front", run, i)
		smug := fmt.Sprintf("/h2smug-%s-%02d-inner", run, i)
		var fields []string
		for _, f := range c.Fields {
			fields = append(fields, strings.ReplaceAll(strings.ReplaceAll(f, "TAG", tag), "SMUG", smug))
		}
		body := strings.ReplaceAll(c.Body, "SMUG", smug)
		before := b.Stats().Malformed
		status, how, err := h2Request(ctx, addr, encodeBlock(fields...), body)
		time.Sleep(50 * time.Millisecond)
		res := SmuggleResult{Name: c.Name, Status: status, Closed: strings.HasPrefix(how, "goaway") || how == "closed",
			BackendSaw: b.Seen(tag), Smuggled: b.Seen(smug), Malformed: b.Stats().Malformed - before}
		if status != 0 {
			res.Answers = 1
		}
		if err != nil {
			res.Error = err.Error()
		} else if status == 0 {
			res.Error = how
		}
		if b.SawHeader("X-Injected") {
			res.Leaked = "X-Injected"
		}
		res.OK = safe(res, status >= 400 || status == 0 && how != "no answer") && res.Leaked == ""
		if c.Accept {
			res.OK = res.OK && status/100 == 2
		}
		out = append(out, res)
	}
	return out
}

// h2Request sends one request (header block, optional body) on stream 1
// of a new connection and returns the answer's status, or how the stream
// or connection ended instead ("rst CODE", "goaway CODE", "closed",
// "no answer").
func h2Request(ctx context.Context, addr string, block []byte, body string) (int, string, error) {
	h, err := dialH2(ctx, addr, 0)
	if err != nil {
		return 0, "", err
	}
	defer h.close()
	err = h.fr.WriteHeaders(http2.HeadersFrameParam{StreamID: 1, BlockFragment: block, EndStream: body == "", EndHeaders: true})
	if err == nil && body != "" {
		err = h.fr.WriteData(1, true, []byte(body))
	}
	if err == nil {
		err = h.bw.Flush()
	}
	if err != nil {
		return 0, "", fmt.Errorf("write: %w", err)
	}
	_ = h.tls.SetReadDeadline(time.Now().Add(3 * time.Second))
	rfr := http2.NewFramer(nil, h.tls)
	rfr.SetMaxReadFrameSize(1 << 20)
	status := 0
	dec := hpack.NewDecoder(65536, func(f hpack.HeaderField) {
		if f.Name == ":status" {
			status, _ = strconv.Atoi(f.Value)
		}
	})
	for {
		f, err := rfr.ReadFrame()
		if err != nil {
			if strings.Contains(err.Error(), "timeout") {
				return 0, "no answer", nil
			}
			return 0, "closed", nil
		}
		switch f := f.(type) {
		case *http2.SettingsFrame:
			if !f.IsAck() {
				_ = h.fr.WriteSettingsAck()
				_ = h.bw.Flush()
			}
		case *http2.HeadersFrame:
			if _, err := dec.Write(f.HeaderBlockFragment()); err != nil {
				return 0, "", fmt.Errorf("hpack: %w", err)
			}
			if f.StreamID == 1 && status != 0 {
				return status, "answer", nil
			}
		case *http2.RSTStreamFrame:
			if f.StreamID == 1 {
				return 0, "rst " + f.ErrCode.String(), nil
			}
		case *http2.GoAwayFrame:
			return 0, "goaway " + f.ErrCode.String(), nil
		}
	}
}
