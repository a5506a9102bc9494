package persist

import (
	"bytes"
	"errors"
)

// MaxCallIDLen is the longest Call-ID CallID accepts.
const MaxCallIDLen = 1024

// Errors of CallID.
var (
	// ErrNoCallID means the message's header has no Call-ID.
	ErrNoCallID = errors.New("sip: no Call-ID header")
	// ErrNotSIP means the message does not start like a SIP request or
	// response.
	ErrNotSIP = errors.New("sip: not a SIP message")
)

// CallID returns the Call-ID of a SIP message (RFC 3261): a request or a
// response, as one UDP datagram or the start of a TCP stream. The header
// is matched case-insensitively by its long name "Call-ID" or compact form
// "i", with optional blanks before the colon; the value is trimmed, and a
// folded value (continued on lines starting with a blank) is joined by one
// space. Only complete header lines count: in a truncated message, a
// Call-ID line that is not yet terminated is not returned. The result is a
// sub-slice of msg unless the value was folded.
func CallID(msg []byte) ([]byte, error) {
	line, rest, ok := nextLine(msg)
	if !ok || !isStartLine(line) {
		return nil, ErrNotSIP
	}
	for {
		line, rest, ok = nextLine(rest)
		if !ok || len(line) == 0 {
			return nil, ErrNoCallID // end of the header or of the data
		}
		colon := bytes.IndexByte(line, ':')
		if colon <= 0 || line[0] == ' ' || line[0] == '\t' {
			continue // a continuation of another header, or not a header
		}
		name := bytes.TrimRight(line[:colon], " \t")
		if !bytes.EqualFold(name, []byte("call-id")) && !bytes.EqualFold(name, []byte("i")) {
			continue
		}
		value := bytes.TrimSpace(line[colon+1:])
		// Folded continuation lines.
		for len(rest) > 0 && (rest[0] == ' ' || rest[0] == '\t') {
			var cont []byte
			cont, rest, ok = nextLine(rest)
			if !ok {
				break
			}
			if c := bytes.TrimSpace(cont); len(c) > 0 {
				value = append(append(append([]byte(nil), value...), ' '), c...)
			}
		}
		if len(value) == 0 {
			return nil, errors.New("sip: empty Call-ID")
		}
		if len(value) > MaxCallIDLen {
			return nil, errors.New("sip: Call-ID longer than 1024 bytes")
		}
		for _, c := range value {
			if c < 0x20 || c == 0x7f {
				return nil, errors.New("sip: Call-ID has a control character")
			}
		}
		return value, nil
	}
}

// nextLine splits off the first LF-terminated line (without CR LF) and
// reports false if there is no complete line.
func nextLine(b []byte) (line, rest []byte, ok bool) {
	i := bytes.IndexByte(b, '\n')
	if i < 0 {
		return nil, b, false
	}
	line = b[:i]
	if n := len(line); n > 0 && line[n-1] == '\r' {
		line = line[:n-1]
	}
	return line, b[i+1:], true
}

// isStartLine reports whether line is a SIP request line ("METHOD uri
// SIP/2.0") or status line ("SIP/2.0 code reason").
func isStartLine(line []byte) bool {
	const v = "SIP/2.0"
	if bytes.HasPrefix(line, []byte(v+" ")) {
		return true
	}
	return bytes.HasSuffix(line, []byte(" "+v)) && bytes.IndexByte(line, ' ') > 0
}
