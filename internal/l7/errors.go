package l7

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// statusText is the reason phrase of status, never empty.
func statusText(status int) string {
	if t := http.StatusText(status); t != "" {
		return t
	}
	return "Status " + strconv.Itoa(status)
}

// writeSimple writes a complete response with a short plain-text body
// (or body as HTML when given) and, with close, Connection: close.
func writeSimple(w *bufio.Writer, status int, body []byte, location string, close bool) {
	writeStatusLine(w, status, nil)
	if location != "" {
		_, _ = w.WriteString("Location: ")
		_, _ = w.WriteString(location)
		_, _ = w.WriteString("\r\n")
	}
	if body == nil {
		body = []byte(strconv.Itoa(status) + " " + statusText(status) + "\n")
		_, _ = w.WriteString("Content-Type: text/plain; charset=utf-8\r\n")
	} else {
		_, _ = w.WriteString("Content-Type: text/html; charset=utf-8\r\n")
	}
	_, _ = w.WriteString("Cache-Control: no-store\r\n")
	writeContentLength(w, int64(len(body)))
	if close {
		_, _ = w.WriteString("Connection: close\r\n")
	}
	_, _ = w.WriteString("\r\n")
	_, _ = w.Write(body)
}

// answer is what a client gets instead of a real server's response.
type answer struct {
	status   int
	body     []byte // nil: the plain page
	location string
}

// unavailable returns the answer for status (503 when no real server is
// available, 502 or 504 when one failed) under pl's error settings: for
// 503, a redirect to ErrorURL, or ErrorCode, with the custom ErrorPage.
func unavailable(pl *Pool, status int, host, target []byte) answer {
	a := answer{status: status}
	if pl == nil || status != 503 {
		return a
	}
	switch {
	case pl.ErrorURL != "":
		a.status = 302
		a.location = expandURL(pl.ErrorURL, host, target)
	case pl.ErrorCode != 0:
		a.status = pl.ErrorCode
	}
	if pl.ErrorPage != nil && a.location == "" {
		a.body = pl.ErrorPage
	}
	return a
}

// expandURL substitutes LoadMaster's %h (the request's host) and %s (its
// path and query) in an error URL. Both were validated by the parser, so
// the result holds no control characters.
func expandURL(u string, host, target []byte) string {
	if !strings.Contains(u, "%") {
		return u
	}
	r := strings.NewReplacer("%h", string(host), "%s", string(target))
	return r.Replace(u)
}

// errorResponse sends the error answer for status to an HTTP/1.1 client.
func (cc *clientConn) errorResponse(st *state, pl *Pool, status int) {
	if !cc.bodyDone {
		cc.closeAfter = true // the body was not read: the connection cannot carry on
	}
	a := unavailable(pl, status, cc.req.Host, cc.req.Target)
	// The write deadline in force is the last response's, which may be
	// long past on a keep-alive connection.
	_ = cc.c.SetWriteDeadline(time.Now().Add(st.cfg.BodyTimeout))
	cc.cnt.answered(a.status)
	writeSimple(cc.bw, a.status, a.body, a.location, cc.closeAfter)
	cc.wrote = true
	cc.cnt.complete = cc.bw.Flush() == nil
}
