// Package syslog sends Fulcrum's events and access log lines to remote
// syslog receivers as RFC 5424 messages over UDP (RFC 5426), TCP with
// octet counting (RFC 6587) and TLS (RFC 5425).
//
// A Hub holds one sender per configured host, each with a goroutine and a
// bounded queue of its own: a slow or unreachable receiver never delays
// the others or the caller, and a message that does not fit is counted as
// dropped for that host.
package syslog

import (
	"sort"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"
)

// Facilities used by Fulcrum.
const (
	// FacilityLocal0 carries events.
	FacilityLocal0 = 16
	// FacilityLocal1 carries access log lines.
	FacilityLocal1 = 17
)

// SDID is the structured-data element every event's fields go in. 32473 is
// the private enterprise number RFC 5612 reserves for documentation and
// examples; Fulcrum has no number of its own.
const SDID = "fulcrum@32473"

// AppName is the APP-NAME of every message.
const AppName = "fulcrum"

// Message is one RFC 5424 message before formatting.
type Message struct {
	// Facility and Severity make the PRI (facility*8 + severity).
	Facility int
	Severity int
	// Time is the TIMESTAMP, written in RFC 3339 with microseconds.
	Time time.Time
	// Hostname, ProcID and MsgID are header fields; "" is written as "-".
	// Characters outside printable US-ASCII become '_' and each field is
	// cut to its RFC 5424 length (255, 128, 32).
	Hostname string
	ProcID   string
	MsgID    string
	// Fields go in one SD-ELEMENT [fulcrum@32473 …], sorted by name; none
	// writes "-". Names are cut to 32 characters of printable US-ASCII
	// without '=', ' ', ']' and '"'; values are UTF-8 on one line (line
	// breaks and NUL become spaces) with '"', '\' and ']' escaped by a
	// backslash.
	Fields map[string]string
	// Text is the MSG, UTF-8 without a BOM (RFC 5424's MSG-ANY); line
	// breaks become spaces.
	Text string
}

// Format returns m as an RFC 5424 message of at most max bytes (no limit
// when max <= 0). A message that is too long loses the end of its text
// first, then its field values are cut to 64 bytes each, then its
// structured data; it is cut at a character boundary, never inside an
// escape, so it stays well formed.
func Format(m *Message, max int) []byte {
	b := appendHeader(nil, m)
	head := len(b)
	b = appendSD(b, m.Fields, 0)
	if max > 0 && len(b)+1 > max && len(m.Fields) > 0 {
		b = appendSD(b[:head], m.Fields, 64)
		if len(b)+1 > max {
			b = append(b[:head], '-')
		}
	}
	text := cleanText(m.Text)
	if text == "" {
		return b
	}
	room := len(text)
	if max > 0 {
		room = max - len(b) - 1
		if room <= 0 {
			return b
		}
	}
	b = append(b, ' ')
	return append(b, cutUTF8(text, room)...)
}

func appendHeader(b []byte, m *Message) []byte {
	pri := m.Facility*8 + m.Severity
	if m.Facility < 0 || m.Facility > 23 || m.Severity < 0 || m.Severity > 7 {
		pri = FacilityLocal0*8 + 5
	}
	b = append(b, '<')
	b = strconv.AppendInt(b, int64(pri), 10)
	b = append(b, ">1 "...)
	if m.Time.IsZero() {
		b = append(b, '-')
	} else {
		b = m.Time.AppendFormat(b, "2006-01-02T15:04:05.000000Z07:00")
	}
	b = append(b, ' ')
	b = appendToken(b, m.Hostname, 255)
	b = append(b, ' ')
	b = appendToken(b, AppName, 48)
	b = append(b, ' ')
	b = appendToken(b, m.ProcID, 128)
	b = append(b, ' ')
	b = appendToken(b, m.MsgID, 32)
	b = append(b, ' ')
	return b
}

// appendToken writes a header field: printable US-ASCII, at most max
// characters, "-" when empty.
func appendToken(b []byte, s string, max int) []byte {
	if s == "" {
		return append(b, '-')
	}
	n := 0
	for i := 0; i < len(s) && n < max; i++ {
		c := s[i]
		if c < 33 || c > 126 {
			c = '_'
		}
		b = append(b, c)
		n++
	}
	return b
}

// appendSD writes the structured data; cut > 0 bounds each value's bytes.
func appendSD(b []byte, fields map[string]string, cut int) []byte {
	if len(fields) == 0 {
		return append(b, '-')
	}
	names := make([]string, 0, len(fields))
	for k := range fields {
		names = append(names, k)
	}
	sort.Strings(names)
	b = append(b, '[')
	b = append(b, SDID...)
	seen := make(map[string]bool, len(names))
	for _, k := range names {
		name := sdName(k)
		if seen[name] {
			continue // two names that clean to the same: the first wins
		}
		seen[name] = true
		v := cleanText(fields[k])
		if cut > 0 {
			v = cutUTF8(v, cut)
		}
		b = append(b, ' ')
		b = append(b, name...)
		b = append(b, '=', '"')
		for i := 0; i < len(v); i++ {
			switch c := v[i]; c {
			case '"', '\\', ']':
				b = append(b, '\\', c)
			default:
				b = append(b, c)
			}
		}
		b = append(b, '"')
	}
	return append(b, ']')
}

// sdName makes a valid SD-NAME: printable US-ASCII except '=', ' ', ']'
// and '"', 1-32 characters.
func sdName(s string) string {
	var sb strings.Builder
	for i := 0; i < len(s) && sb.Len() < 32; i++ {
		c := s[i]
		if c < 33 || c > 126 || c == '=' || c == ']' || c == '"' {
			c = '_'
		}
		sb.WriteByte(c)
	}
	if sb.Len() == 0 {
		return "_"
	}
	return sb.String()
}

// cleanText makes the MSG valid UTF-8 on one line.
func cleanText(s string) string {
	s = strings.ToValidUTF8(s, "\uFFFD")
	if strings.ContainsAny(s, "\r\n\x00") {
		s = strings.NewReplacer("\r\n", " ", "\n", " ", "\r", " ", "\x00", " ").Replace(s)
	}
	return s
}

// cutUTF8 returns at most n bytes of s, cut at a character boundary.
func cutUTF8(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n]
}
