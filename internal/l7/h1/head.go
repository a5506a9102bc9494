// Package h1 is Fulcrum's strict HTTP/1.1 message parser: request and
// response heads, chunked bodies and their trailers.
//
// It parses into a reusable Head without allocating once the Head's buffers
// have grown, and it is deliberately stricter than RFC 9112 allows where
// leniency has led to request smuggling in other proxies: bare LF or CR,
// NUL and other control characters, obs-fold, whitespace before the colon,
// malformed, signed or conflicting Content-Length, Transfer-Encoding other
// than exactly "chunked" together with Content-Length, and malformed chunk
// framing are all errors that the proxy answers with 400 and a close.
package h1

import (
	"bytes"
	"encoding/binary"
	"strconv"
)

// Kind classifies the header fields the proxy treats specially, so that
// the name comparison is done once, at parse time.
type Kind uint8

// The header kinds. KindOther is every header without special treatment.
const (
	KindOther Kind = iota
	KindHost
	KindContentLength
	KindTransferEncoding
	KindConnection
	KindUpgrade
	KindExpect
	KindTE
	KindKeepAlive
	KindProxyConnection
	KindProxyAuthenticate
	KindProxyAuthorization
	KindHTTP2Settings
	KindXForwarded // X-Forwarded-For, -Proto, -Host, -Port, -Server
	KindForwarded
	KindXRealIP
	KindXClientSide
	KindVia
	KindLocation
	KindCookie
	KindTrailer
)

// Field is one header field. Name and Value alias the Head's buffer and
// are valid until the Head is reused. Value has no leading or trailing
// whitespace.
type Field struct {
	Name, Value []byte
	// Kind is the field's classification.
	Kind Kind
	// Hop marks a field that is not forwarded: hop-by-hop by definition or
	// named in Connection, or a repeated Content-Length.
	Hop bool
}

// Error is a parse error with the HTTP status the proxy should answer.
type Error struct {
	// Status is 400, 414, 431, 501 or 505 (for requests) or 502 (for
	// responses, set by the caller).
	Status int
	// Reason says what was wrong, for logs.
	Reason string
}

// Error implements error.
func (e *Error) Error() string { return "http: " + e.Reason }

// The parse errors. They are values, so returning one does not allocate.
var (
	ErrIncomplete       = &Error{400, "incomplete message head"}
	ErrHeadTooLarge     = &Error{431, "request head too large"}
	ErrTooManyFields    = &Error{431, "too many header fields"}
	ErrURITooLong       = &Error{414, "request target too long"}
	ErrBadRequestLine   = &Error{400, "malformed request line"}
	ErrBadMethod        = &Error{400, "malformed method"}
	ErrBadTarget        = &Error{400, "malformed request target"}
	ErrVersion          = &Error{505, "HTTP version not supported"}
	ErrBadVersion       = &Error{400, "malformed HTTP version"}
	ErrBareLF           = &Error{400, "bare LF: lines must end with CRLF"}
	ErrBareCR           = &Error{400, "bare CR"}
	ErrObsFold          = &Error{400, "obs-fold (line folding) is not accepted"}
	ErrBadFieldName     = &Error{400, "malformed header field name"}
	ErrBadFieldValue    = &Error{400, "control character in header field value"}
	ErrBadCL            = &Error{400, "malformed Content-Length"}
	ErrConflictingCL    = &Error{400, "conflicting Content-Length values"}
	ErrCLAndTE          = &Error{400, "both Content-Length and Transfer-Encoding"}
	ErrBadTE            = &Error{400, "Transfer-Encoding must end with chunked"}
	ErrUnsupportedTE    = &Error{501, "unsupported transfer coding"}
	ErrTEIn10           = &Error{400, "Transfer-Encoding in an HTTP/1.0 request"}
	ErrNoHost           = &Error{400, "missing Host header"}
	ErrDupHost          = &Error{400, "more than one Host header"}
	ErrBadHost          = &Error{400, "malformed Host header"}
	ErrBadConnection    = &Error{400, "malformed Connection header"}
	ErrExpectation      = &Error{417, "unsupported expectation"}
	ErrConnect          = &Error{405, "CONNECT is not proxied"}
	ErrBadStatusLine    = &Error{502, "malformed status line"}
	ErrBadChunk         = &Error{400, "malformed chunk"}
	ErrChunkTooLarge    = &Error{400, "chunk size too large"}
	ErrTrailerTooLarge  = &Error{400, "trailer section too large"}
	ErrBadTrailerName   = &Error{400, "malformed trailer field"}
	ErrResponseTooLarge = &Error{502, "response head too large"}
)

// Limits bound what a head may hold.
type Limits struct {
	// MaxFields is the largest number of header fields.
	MaxFields int
	// MaxTarget is the longest request target.
	MaxTarget int
}

// Head is a parsed request or response head. Reuse one Head per connection:
// Reset keeps its buffers.
type Head struct {
	// Method and Target are the request line's method and target (in
	// origin form: an absolute-form target is split into Host and Target).
	Method, Target []byte
	// Status and Reason are a response's status code and reason phrase.
	Status int
	Reason []byte
	// Minor is the HTTP/1.x minor version: 0 or 1.
	Minor int
	// Fields are the header fields in order.
	Fields []Field
	// ContentLength is the body length, or -1 when not given.
	ContentLength int64
	// Chunked is set when Transfer-Encoding is chunked.
	Chunked bool
	// Close is set when the connection must close after this message
	// (Connection: close, HTTP/1.0 without keep-alive, or a response with
	// both Transfer-Encoding and Content-Length).
	Close bool
	// Upgrade holds the Upgrade header's value when Connection names
	// "upgrade"; nil otherwise.
	Upgrade []byte
	// Expect100 is set for a request with Expect: 100-continue.
	Expect100 bool
	// Host is a request's Host header (or the authority of an
	// absolute-form target).
	Host []byte
	// TrailersOK is set when a request's TE header lists "trailers".
	TrailersOK bool
	// TransferEncoding holds a response's Transfer-Encoding value when it
	// is not plain chunked (the body then runs to the end of the
	// connection).
	TransferEncoding []byte

	buf []byte
}

// Reset empties h, keeping its buffers.
func (h *Head) Reset() {
	fields := h.Fields[:0]
	buf := h.buf[:0]
	*h = Head{Fields: fields, buf: buf, ContentLength: -1}
}

// HeadEnd returns the length of the head at the start of b (through the
// empty line that ends it), or -1 if b does not hold a complete head yet.
// from is where a previous call left off scanning (0 at first); the new
// value is returned in next so that incremental reads never rescan.
// A line end found by HeadEnd may be a bare LF; the parser rejects it.
func HeadEnd(b []byte, from int) (n, next int) {
	i := from
	for {
		j := bytes.IndexByte(b[i:], '\n')
		if j < 0 {
			// Rescan the last two bytes next time: they may be "\r\n\r"
			// waiting for its "\n".
			return -1, max(len(b)-3, 0)
		}
		i += j + 1
		// i is just past a LF. The head ends if the line starting at i is
		// empty ("\r\n" or a bare "\n").
		if i < len(b) && b[i] == '\n' {
			return i + 1, i + 1
		}
		if i+1 < len(b) && b[i] == '\r' && b[i+1] == '\n' {
			return i + 2, i + 2
		}
		if i+1 >= len(b) {
			return -1, i - 1
		}
	}
}

// ParseRequest parses the request head held in b (exactly as long as
// HeadEnd said), copying it into h's own buffer.
func (h *Head) ParseRequest(b []byte, lim Limits) error {
	h.Reset()
	h.buf = append(h.buf, b...)
	b = h.buf
	// Empty lines before the request line are refused here, as net/http's
	// parser does; the proxy skips up to two (RFC 9112 §2.2) before it
	// takes the head (l7's skipEmptyLines).
	line, rest, err := nextLine(b)
	if err != nil {
		return err
	}
	if err := h.requestLine(line, lim); err != nil {
		return err
	}
	if err := h.fields(rest, lim.MaxFields); err != nil {
		return err
	}
	return h.requestFraming()
}

// ParseResponse parses the response head held in b.
func (h *Head) ParseResponse(b []byte, maxFields int) error {
	h.Reset()
	h.buf = append(h.buf, b...)
	b = h.buf
	line, rest, err := nextLine(b)
	if err != nil {
		return err
	}
	if err := h.statusLine(line); err != nil {
		return err
	}
	if err := h.fields(rest, maxFields); err != nil {
		return err
	}
	return h.responseFraming()
}

// nextLine splits off one CRLF-terminated line, rejecting bare CR and LF.
func nextLine(b []byte) (line, rest []byte, err error) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, nil, ErrIncomplete
	}
	if i == 0 || b[i-1] != '\r' {
		return nil, nil, ErrBareLF
	}
	line = b[:i-1]
	if bytes.IndexByte(line, '\r') >= 0 {
		return nil, nil, ErrBareCR
	}
	return line, b[i+1:], nil
}

func (h *Head) requestLine(line []byte, lim Limits) error {
	sp := bytes.IndexByte(line, ' ')
	if sp <= 0 {
		return ErrBadRequestLine
	}
	h.Method = line[:sp]
	for _, c := range h.Method {
		if !isTchar(c) {
			return ErrBadMethod
		}
	}
	rest := line[sp+1:]
	sp = bytes.LastIndexByte(rest, ' ')
	if sp < 0 {
		return ErrBadRequestLine
	}
	target, version := rest[:sp], rest[sp+1:]
	if len(target) > lim.MaxTarget {
		return ErrURITooLong
	}
	if len(target) == 0 {
		return ErrBadRequestLine
	}
	if !validTarget(target) {
		return ErrBadTarget
	}
	if err := h.version(version); err != nil {
		return err
	}
	switch {
	case target[0] == '/':
		h.Target = target
	case len(target) == 1 && target[0] == '*':
		if string(h.Method) != "OPTIONS" {
			return ErrBadTarget
		}
		h.Target = target
	case string(h.Method) == "CONNECT":
		return ErrConnect
	default:
		// absolute-form: scheme "://" authority [path-abempty] [ "?" query ]
		i := bytes.Index(target, []byte("://"))
		if i <= 0 || !isScheme(target[:i]) {
			return ErrBadTarget
		}
		auth := target[i+3:]
		end := bytes.IndexAny(auth, "/?")
		path := []byte("/")
		if end >= 0 {
			path = auth[end:]
			auth = auth[:end]
			if path[0] == '?' { // "http://host?q": empty path, keep the query
				path = append([]byte{'/'}, path...)
			}
		}
		if len(auth) == 0 || bytes.IndexByte(auth, '@') >= 0 || !validHost(auth) {
			return ErrBadTarget
		}
		h.Host = auth
		h.Target = path
	}
	return nil
}

// validTarget allows visible ASCII without '#', with every '%' followed
// by two hex digits.
func validTarget(t []byte) bool {
	for i := 0; i < len(t); i++ {
		c := t[i]
		if c <= ' ' || c >= 0x7f || c == '#' {
			return false
		}
		if c == '%' && (i+2 >= len(t) || !isHex(t[i+1]) || !isHex(t[i+2])) {
			return false
		}
	}
	return true
}

func isScheme(b []byte) bool {
	return bytes.EqualFold(b, []byte("http")) || bytes.EqualFold(b, []byte("https"))
}

func (h *Head) version(v []byte) error {
	if len(v) != 8 || string(v[:5]) != "HTTP/" || v[6] != '.' {
		return ErrBadVersion
	}
	if v[5] < '0' || v[5] > '9' || v[7] < '0' || v[7] > '9' {
		return ErrBadVersion
	}
	if v[5] != '1' || v[7] > '1' {
		return ErrVersion
	}
	h.Minor = int(v[7] - '0')
	return nil
}

func (h *Head) statusLine(line []byte) error {
	if len(line) < 12 || line[8] != ' ' {
		return ErrBadStatusLine
	}
	if err := h.version(line[:8]); err != nil {
		return ErrBadStatusLine
	}
	s := line[9:12]
	if s[0] < '1' || s[0] > '5' || s[1] < '0' || s[1] > '9' || s[2] < '0' || s[2] > '9' {
		return ErrBadStatusLine
	}
	h.Status = int(s[0]-'0')*100 + int(s[1]-'0')*10 + int(s[2]-'0')
	if len(line) > 12 {
		if line[12] != ' ' {
			return ErrBadStatusLine
		}
		h.Reason = line[13:]
		for _, c := range h.Reason {
			if c < ' ' && c != '\t' || c == 0x7f {
				return ErrBadStatusLine
			}
		}
	}
	return nil
}

// fields parses the header lines in b, which ends with the empty line.
func (h *Head) fields(b []byte, maxFields int) error {
	for {
		// A field line is scanned for CR only when it is refused:
		// parseField refuses every line holding one, and lineErr then
		// reports it as a bare CR, as nextLine would have.
		i := bytes.IndexByte(b, '\n')
		if i < 0 {
			return ErrIncomplete
		}
		if i == 0 || b[i-1] != '\r' {
			return ErrBareLF
		}
		line := b[:i-1]
		b = b[i+1:]
		if len(line) == 0 {
			return nil
		}
		if line[0] == ' ' || line[0] == '\t' {
			return lineErr(line, ErrObsFold)
		}
		f, err := parseField(line)
		if err != nil {
			return err
		}
		if len(h.Fields) >= maxFields {
			return ErrTooManyFields
		}
		h.Fields = append(h.Fields, f)
	}
}

// parseField parses one "name: value" line without its CRLF.
func parseField(line []byte) (Field, error) {
	colon := bytes.IndexByte(line, ':')
	if colon <= 0 {
		return Field{}, lineErr(line, ErrBadFieldName)
	}
	name := line[:colon]
	for _, c := range name {
		if !isTchar(c) {
			return Field{}, lineErr(line, ErrBadFieldName)
		}
	}
	v := line[colon+1:]
	if !ctlFree(v) {
		return Field{}, lineErr(line, ErrBadFieldValue)
	}
	v = trimOWS(v)
	return Field{Name: name, Value: v, Kind: classify(name)}, nil
}

// lineErr is the error for a refused field line: a bare CR anywhere in
// it takes precedence, as when lines were checked for CR first.
func lineErr(line []byte, err *Error) *Error {
	if bytes.IndexByte(line, '\r') >= 0 {
		return ErrBareCR
	}
	return err
}

// ctlFree reports whether v holds no control character other than HTAB
// and no DEL. It tests eight bytes at a time and looks at single bytes
// only in a word that may hold one.
func ctlFree(v []byte) bool {
	const ones, highs = 0x0101010101010101, 0x8080808080808080
	for len(v) >= 8 {
		x := binary.LittleEndian.Uint64(v)
		d := x ^ (0x7f * ones)
		// A high bit is set for a byte below 0x20 (x - 0x20 borrows) or
		// equal to 0x7f (d - 1 borrows); never missed, sometimes set
		// for an innocent byte, which the loop below clears up.
		if ((x-0x20*ones)&^x|(d-ones)&^d)&highs != 0 {
			for _, c := range v[:8] {
				if c < ' ' && c != '\t' || c == 0x7f {
					return false
				}
			}
		}
		v = v[8:]
	}
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}

func trimOWS(v []byte) []byte {
	for len(v) > 0 && (v[0] == ' ' || v[0] == '\t') {
		v = v[1:]
	}
	for len(v) > 0 && (v[len(v)-1] == ' ' || v[len(v)-1] == '\t') {
		v = v[:len(v)-1]
	}
	return v
}

// requestFraming reads the framing and connection headers of a request.
func (h *Head) requestFraming() error {
	var te []byte
	teCount, hosts := 0, 0
	for i := range h.Fields {
		f := &h.Fields[i]
		switch f.Kind {
		case KindContentLength:
			n, ok := parseCL(f.Value)
			if !ok {
				return ErrBadCL
			}
			if h.ContentLength >= 0 {
				if n != h.ContentLength {
					return ErrConflictingCL
				}
			}
			h.ContentLength = n
			f.Hop = true // the proxy writes its own framing header
		case KindTransferEncoding:
			teCount++
			te = f.Value
			f.Hop = true
		case KindHost:
			hosts++
			if hosts > 1 {
				return ErrDupHost
			}
			if !validHost(f.Value) {
				return ErrBadHost
			}
			if h.Host == nil { // an absolute-form target's authority wins
				h.Host = f.Value
			}
			f.Hop = true // written by the proxy (possibly rewritten)
		case KindExpect:
			if h.Minor == 1 {
				if !bytes.EqualFold(f.Value, []byte("100-continue")) {
					return ErrExpectation
				}
				h.Expect100 = true
			}
			f.Hop = true
		case KindTE:
			h.TrailersOK = hasToken(f.Value, "trailers")
			f.Hop = true
		}
	}
	if teCount > 0 {
		if h.Minor == 0 {
			return ErrTEIn10
		}
		if h.ContentLength >= 0 {
			return ErrCLAndTE
		}
		if teCount > 1 {
			return ErrBadTE
		}
		switch {
		case bytes.EqualFold(te, []byte("chunked")):
			h.Chunked = true
		case lastToken(te, "chunked"):
			return ErrUnsupportedTE
		default:
			return ErrBadTE
		}
	}
	if h.Minor == 1 && hosts == 0 && h.Host == nil {
		return ErrNoHost
	}
	return h.connection()
}

// responseFraming reads the framing and connection headers of a response.
// The caller decides whether the response has a body at all (HEAD, 1xx,
// 204, 304); BodyMode does.
func (h *Head) responseFraming() error {
	teCount := 0
	for i := range h.Fields {
		f := &h.Fields[i]
		switch f.Kind {
		case KindContentLength:
			n, ok := parseCL(f.Value)
			if !ok {
				return &Error{502, "malformed Content-Length in response"}
			}
			if h.ContentLength >= 0 && n != h.ContentLength {
				return &Error{502, "conflicting Content-Length values in response"}
			}
			h.ContentLength = n
			f.Hop = true
		case KindTransferEncoding:
			teCount++
			f.Hop = true
			if teCount == 1 && bytes.EqualFold(f.Value, []byte("chunked")) {
				h.Chunked = true
			} else {
				h.Chunked = false
				h.TransferEncoding = f.Value
			}
		}
	}
	if teCount > 0 {
		// Transfer-Encoding overrides Content-Length (RFC 9112 §6.3), and
		// such a connection is not reused.
		if h.ContentLength >= 0 {
			h.Close = true
		}
		h.ContentLength = -1
		if h.Minor == 0 {
			h.Chunked = false
			h.TransferEncoding = []byte("chunked")
		}
	}
	return h.connection()
}

// connection applies the Connection header: close and keep-alive tokens,
// upgrade, and every other token marks the fields it names as hop-by-hop.
func (h *Head) connection() error {
	keepAlive, upgradeTok := false, false
	for i := range h.Fields {
		f := &h.Fields[i]
		if f.Kind != KindConnection {
			continue
		}
		f.Hop = true
		v := f.Value
		for len(v) > 0 {
			var tok []byte
			if c := bytes.IndexByte(v, ','); c >= 0 {
				tok, v = trimOWS(v[:c]), v[c+1:]
			} else {
				tok, v = trimOWS(v), nil
			}
			if len(tok) == 0 {
				continue
			}
			for _, c := range tok {
				if !isTchar(c) {
					return ErrBadConnection
				}
			}
			switch {
			case bytes.EqualFold(tok, []byte("close")):
				h.Close = true
			case bytes.EqualFold(tok, []byte("keep-alive")):
				keepAlive = true
			case bytes.EqualFold(tok, []byte("upgrade")):
				upgradeTok = true
			default:
				for j := range h.Fields {
					if bytes.EqualFold(h.Fields[j].Name, tok) {
						h.Fields[j].Hop = true
					}
				}
			}
		}
	}
	if h.Minor == 0 && !keepAlive {
		h.Close = true
	}
	for i := range h.Fields {
		f := &h.Fields[i]
		switch f.Kind {
		case KindUpgrade:
			f.Hop = true
			if upgradeTok && h.Minor == 1 {
				h.Upgrade = f.Value
			}
		case KindKeepAlive, KindProxyConnection, KindProxyAuthenticate, KindProxyAuthorization, KindHTTP2Settings:
			f.Hop = true
		}
	}
	return nil
}

// parseCL parses a Content-Length value: 1 to 18 decimal digits, nothing
// else (no sign, no whitespace inside, no list).
func parseCL(v []byte) (int64, bool) {
	if len(v) == 0 || len(v) > 18 {
		return 0, false
	}
	var n int64
	for _, c := range v {
		if c < '0' || c > '9' {
			return 0, false
		}
		n = n*10 + int64(c-'0')
	}
	return n, true
}

// hasToken reports whether the comma-separated list v holds tok.
func hasToken(v []byte, tok string) bool {
	for len(v) > 0 {
		var t []byte
		if c := bytes.IndexByte(v, ','); c >= 0 {
			t, v = v[:c], v[c+1:]
		} else {
			t, v = v, nil
		}
		t = trimOWS(t)
		if sc := bytes.IndexByte(t, ';'); sc >= 0 {
			t = trimOWS(t[:sc])
		}
		if bytes.EqualFold(t, []byte(tok)) {
			return true
		}
	}
	return false
}

// lastToken reports whether the last element of the list v is tok.
func lastToken(v []byte, tok string) bool {
	if c := bytes.LastIndexByte(v, ','); c >= 0 {
		v = v[c+1:]
	}
	return bytes.EqualFold(trimOWS(v), []byte(tok))
}

// validHost checks a Host value: reg-name or IPv4 with optional port, or a
// bracketed IPv6 literal with optional port. Empty is allowed (RFC 9110
// §7.2 for targets without an authority).
func validHost(v []byte) bool {
	if len(v) > 255 {
		return false
	}
	if len(v) > 0 && v[0] == '[' {
		end := bytes.IndexByte(v, ']')
		if end < 0 {
			return false
		}
		for _, c := range v[1:end] {
			if !(isHex(c) || c == ':' || c == '.') {
				return false
			}
		}
		return validPort(v[end+1:])
	}
	host, port := v, []byte(nil)
	if c := bytes.IndexByte(v, ':'); c >= 0 {
		host, port = v[:c], v[c:]
		if !validPort(port) {
			return false
		}
	}
	if !validTarget(host) {
		return false
	}
	for _, c := range host {
		if !(isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '%' ||
			c == '!' || c == '$' || c == '&' || c == '\'' || c == '(' || c == ')' || c == '*' ||
			c == '+' || c == ',' || c == ';' || c == '=') {
			return false
		}
	}
	return true
}

func validPort(p []byte) bool {
	if len(p) == 0 {
		return true
	}
	if p[0] != ':' || len(p) > 6 {
		return false
	}
	for _, c := range p[1:] {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// Get returns the value of the first field named name (case-insensitive)
// that is not hop-by-hop, or nil.
func (h *Head) Get(name string) []byte {
	for i := range h.Fields {
		if !h.Fields[i].Hop && equalFold(h.Fields[i].Name, name) {
			return h.Fields[i].Value
		}
	}
	return nil
}

// String renders a summary for logs, e.g. "GET /x HTTP/1.1".
func (h *Head) String() string {
	if h.Method != nil {
		return string(h.Method) + " " + string(h.Target) + " HTTP/1." + strconv.Itoa(h.Minor)
	}
	return "HTTP/1." + strconv.Itoa(h.Minor) + " " + strconv.Itoa(h.Status)
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := range len(b) {
		c, d := b[i], s[i]
		if c != d && lower(c) != lower(d) {
			return false
		}
	}
	return true
}

func lower(c byte) byte {
	if 'A' <= c && c <= 'Z' {
		return c + 'a' - 'A'
	}
	return c
}

// classify returns the Kind of a header name.
func classify(n []byte) Kind {
	switch len(n) {
	case 2:
		if equalFold(n, "te") {
			return KindTE
		}
	case 3:
		if equalFold(n, "via") {
			return KindVia
		}
	case 4:
		if equalFold(n, "host") {
			return KindHost
		}
	case 6:
		if equalFold(n, "expect") {
			return KindExpect
		}
		if equalFold(n, "cookie") {
			return KindCookie
		}
	case 7:
		if equalFold(n, "upgrade") {
			return KindUpgrade
		}
		if equalFold(n, "trailer") {
			return KindTrailer
		}
	case 8:
		if equalFold(n, "location") {
			return KindLocation
		}
	case 9:
		if equalFold(n, "forwarded") {
			return KindForwarded
		}
		if equalFold(n, "x-real-ip") {
			return KindXRealIP
		}
	case 10:
		if equalFold(n, "connection") {
			return KindConnection
		}
		if equalFold(n, "keep-alive") {
			return KindKeepAlive
		}
	case 12:
		if equalFold(n, "x-clientside") {
			return KindXClientSide
		}
	case 14:
		if equalFold(n, "content-length") {
			return KindContentLength
		}
		if equalFold(n, "http2-settings") {
			return KindHTTP2Settings
		}
	case 16:
		if equalFold(n, "proxy-connection") {
			return KindProxyConnection
		}
	case 17:
		if equalFold(n, "transfer-encoding") {
			return KindTransferEncoding
		}
	case 18:
		if equalFold(n, "proxy-authenticate") {
			return KindProxyAuthenticate
		}
	case 19:
		if equalFold(n, "proxy-authorization") {
			return KindProxyAuthorization
		}
	}
	if len(n) > 12 && equalFold(n[:12], "x-forwarded-") {
		return KindXForwarded
	}
	return KindOther
}

// tchar is the set of token characters (RFC 9110 §5.6.2).
var tchar = func() (t [256]bool) {
	for c := 'a'; c <= 'z'; c++ {
		t[c] = true
	}
	for c := 'A'; c <= 'Z'; c++ {
		t[c] = true
	}
	for c := '0'; c <= '9'; c++ {
		t[c] = true
	}
	for _, c := range "!#$%&'*+-.^_`|~" {
		t[c] = true
	}
	return t
}()

func isTchar(c byte) bool { return tchar[c] }

// IsToken reports whether s is a non-empty token.
func IsToken(s []byte) bool {
	if len(s) == 0 {
		return false
	}
	for _, c := range s {
		if !tchar[c] {
			return false
		}
	}
	return true
}

func isAlnum(c byte) bool {
	return 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
}

func isHex(c byte) bool {
	return '0' <= c && c <= '9' || 'a' <= c && c <= 'f' || 'A' <= c && c <= 'F'
}

// ValidValue reports whether v may be sent as a header field value: no
// control characters other than HTAB, no leading or trailing whitespace.
func ValidValue(v []byte) bool {
	for _, c := range v {
		if c < ' ' && c != '\t' || c == 0x7f {
			return false
		}
	}
	return len(v) == 0 || (v[0] != ' ' && v[0] != '\t' && v[len(v)-1] != ' ' && v[len(v)-1] != '\t')
}
