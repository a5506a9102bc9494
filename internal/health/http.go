package health

import (
	"bufio"
	"context"
	"crypto/tls"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// userAgent is sent by http and https checks unless Headers set one.
const userAgent = "Fulcrum-Health-Check/1.0"

// httpChecker sends one request, written byte for byte so that an
// HTTP/1.0 check is really HTTP/1.0 without a Host header (as LoadMaster
// sends it), and reads the answer with net/http's response parser.
type httpChecker struct {
	typ     string // http or https
	method  string
	url     string
	http11  bool
	host    string
	headers []string // "Name: value" lines, sorted by name
	post    string
	codes   []int
	pattern *regexp.Regexp
	p       Params
}

func newHTTPChecker(p Params) (*httpChecker, error) {
	h := &httpChecker{typ: p.Type, method: p.Method, url: p.URL, http11: p.HTTP11, host: p.Host, post: p.PostData, p: p}
	if h.url == "" {
		h.url = "/"
	}
	if !strings.HasPrefix(h.url, "/") || strings.ContainsFunc(h.url, func(r rune) bool { return r <= ' ' || r == 0x7f }) {
		return nil, fmt.Errorf("url: must start with / and hold no spaces or control characters, got %q", h.url)
	}
	switch h.method {
	case "":
		h.method = http.MethodHead
	case http.MethodHead, http.MethodGet, http.MethodPost, http.MethodOptions:
	default:
		return nil, fmt.Errorf("method: must be HEAD, GET, POST or OPTIONS, got %q", h.method)
	}
	if hasCtl(h.host) || strings.Contains(h.host, " ") {
		return nil, fmt.Errorf("host: must not hold spaces or control characters, got %q", h.host)
	}
	if len(p.Headers) > 4 {
		return nil, fmt.Errorf("headers: at most 4, got %d", len(p.Headers))
	}
	for _, k := range sortedKeys(p.Headers) {
		v := p.Headers[k]
		if !tokenRE.MatchString(k) {
			return nil, fmt.Errorf("headers: %q is not a valid header name", k)
		}
		if hasCtl(v) {
			return nil, fmt.Errorf("headers: value of %s must not hold control characters", k)
		}
		h.headers = append(h.headers, k+": "+v)
	}
	for _, c := range p.Codes {
		if c < 100 || c > 599 {
			return nil, fmt.Errorf("codes: %d is not an HTTP status code", c)
		}
	}
	h.codes = slices.Clone(p.Codes)
	if p.Pattern != "" {
		re, err := regexp.Compile(p.Pattern)
		if err != nil {
			return nil, fmt.Errorf("pattern: not a valid regular expression: %w", err)
		}
		h.pattern = re
		if h.method == http.MethodHead {
			h.method = http.MethodGet
		}
	}
	return h, nil
}

// upCode reports whether status counts as Up: 2xx, 301, 302, 401 or one of
// the configured codes.
func (h *httpChecker) upCode(status int) bool {
	switch {
	case status >= 200 && status <= 299, status == 301, status == 302, status == 401:
		return true
	}
	return slices.Contains(h.codes, status)
}

// request returns the request bytes for target t.
func (h *httpChecker) request(t Target) []byte {
	var b strings.Builder
	proto := "HTTP/1.0"
	if h.http11 {
		proto = "HTTP/1.1"
	}
	b.WriteString(h.method + " " + h.url + " " + proto + "\r\n")
	has := func(name string) bool {
		return slices.ContainsFunc(h.headers, func(l string) bool {
			return len(l) > len(name) && strings.EqualFold(l[:len(name)+1], name+":")
		})
	}
	if h.http11 && !has("Host") {
		host := h.host
		if host == "" {
			host = t.Address
			if strings.Contains(host, ":") {
				host = "[" + host + "]"
			}
			if (h.typ == TypeHTTP && t.Port != 80) || (h.typ == TypeHTTPS && t.Port != 443) {
				host += ":" + strconv.Itoa(t.Port)
			}
		}
		b.WriteString("Host: " + host + "\r\n")
	}
	if !has("User-Agent") {
		b.WriteString("User-Agent: " + userAgent + "\r\n")
	}
	if h.http11 && !has("Connection") {
		b.WriteString("Connection: close\r\n")
	}
	for _, l := range h.headers {
		b.WriteString(l + "\r\n")
	}
	if h.method == http.MethodPost {
		if !has("Content-Type") {
			b.WriteString("Content-Type: application/x-www-form-urlencoded\r\n")
		}
		b.WriteString("Content-Length: " + strconv.Itoa(len(h.post)) + "\r\n\r\n")
		b.WriteString(h.post)
	} else {
		b.WriteString("\r\n")
	}
	return []byte(b.String())
}

// Check sends the request and judges the answer.
func (h *httpChecker) Check(ctx context.Context, t Target) Result {
	start := time.Now()
	where := t.String() + h.url
	fail := func(what string) Result {
		return Result{Reason: h.typ + " " + where + ": " + what, Latency: time.Since(start)}
	}
	raw, stop, err := dial(ctx, "tcp", t)
	if err != nil {
		return fail("connect: " + describe(err))
	}
	defer func() { stop(); _ = raw.Close() }()
	var c net.Conn = raw
	if h.typ == TypeHTTPS {
		tc := tls.Client(raw, tlsConfig(h.p, t))
		if err := tc.HandshakeContext(ctx); err != nil {
			return fail(describe(err))
		}
		c = tc
	}
	if _, err := c.Write(h.request(t)); err != nil {
		return fail("send: " + describe(err))
	}
	br := bufio.NewReader(io.LimitReader(c, maxResponse))
	resp, err := http.ReadResponse(br, &http.Request{Method: h.method})
	if err != nil {
		return fail("bad answer: " + describe(err))
	}
	defer resp.Body.Close()
	code := h.typ + " " + strconv.Itoa(resp.StatusCode) + " from " + where
	if !h.upCode(resp.StatusCode) {
		return Result{Reason: code, Latency: time.Since(start)}
	}
	if h.pattern != nil {
		body, err := io.ReadAll(io.LimitReader(resp.Body, maxBody))
		if err != nil && len(body) == 0 {
			return Result{Reason: code + ": reading body: " + describe(err), Latency: time.Since(start)}
		}
		if !h.pattern.Match(body) {
			return Result{Reason: fmt.Sprintf("%s: body does not match %q", code, h.pattern.String()), Latency: time.Since(start)}
		}
	}
	return up(code, start)
}
