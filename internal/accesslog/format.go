package accesslog

import (
	"fmt"
	"net/netip"
	"strconv"
	"time"
	"unicode/utf8"
)

// Formats of the access log (config.AccessLogFormats).
const (
	// FormatJSON is one JSON object per line (AppendJSON).
	FormatJSON = "json"
	// FormatHAProxy is HAProxy's "option httplog" line for HTTP entries
	// and "option tcplog" line for TCP and UDP ones (AppendHAProxy).
	FormatHAProxy = "haproxy"
)

// appendFunc appends one formatted line, without its line feed.
type appendFunc func(dst []byte, e *Entry) []byte

// formatter returns the append function of a format name.
func formatter(name string) (appendFunc, error) {
	switch name {
	case FormatJSON, "":
		return AppendJSON, nil
	case FormatHAProxy:
		return AppendHAProxy, nil
	}
	return nil, fmt.Errorf("unknown access log format %q (want json or haproxy)", name)
}

// AppendJSON appends e to dst as one JSON object without a line feed.
// Times are RFC 3339 in UTC with milliseconds, durations are milliseconds
// as numbers (with microseconds as decimals). Every string is escaped as
// JSON requires, control characters (CR and LF included) as \u00XX, and
// bytes that are not UTF-8 are replaced by U+FFFD, so a client cannot
// break a line or the object. The fields are listed in
// docs/observability.md ("Access logs").
func AppendJSON(dst []byte, e *Entry) []byte {
	dst = append(dst, `{"time":"`...)
	dst = e.Time.UTC().AppendFormat(dst, "2006-01-02T15:04:05.000Z07:00")
	dst = append(dst, `","kind":`...)
	dst = appendJSONString(dst, e.Kind)
	dst = append(dst, `,"vs":`...)
	dst = strconv.AppendInt(dst, int64(e.VS), 10)
	dst = append(dst, `,"vsName":`...)
	dst = appendJSONString(dst, e.VSName)
	if e.SubVS != 0 {
		dst = append(dst, `,"subvs":`...)
		dst = strconv.AppendInt(dst, int64(e.SubVS), 10)
		dst = append(dst, `,"subvsName":`...)
		dst = appendJSONString(dst, e.SubVSName)
	}
	dst = append(dst, `,"client":`...)
	dst = appendJSONAddrPort(dst, e.Client)
	dst = append(dst, `,"frontend":`...)
	dst = appendJSONAddrPort(dst, e.Frontend)
	dst = append(dst, `,"server":`...)
	dst = appendJSONString(dst, e.Server)
	dst = append(dst, `,"serverId":`...)
	dst = strconv.AppendInt(dst, int64(e.ServerID), 10)
	if e.Kind == KindHTTP {
		dst = append(dst, `,"method":`...)
		dst = appendJSONString(dst, e.Method)
		dst = append(dst, `,"host":`...)
		dst = appendJSONString(dst, e.Host)
		dst = append(dst, `,"uri":`...)
		dst = appendJSONString(dst, e.URI)
		dst = append(dst, `,"proto":`...)
		dst = appendJSONString(dst, e.Proto)
		dst = append(dst, `,"status":`...)
		dst = strconv.AppendInt(dst, int64(e.Status), 10)
		dst = append(dst, `,"userAgent":`...)
		dst = appendJSONString(dst, e.UserAgent)
		dst = append(dst, `,"ttfbMs":`...)
		dst = appendMs(dst, e.TTFB)
		dst = append(dst, `,"retries":`...)
		dst = strconv.AppendInt(dst, int64(e.Retries), 10)
	}
	if e.SNI != "" {
		dst = append(dst, `,"sni":`...)
		dst = appendJSONString(dst, e.SNI)
	}
	dst = append(dst, `,"bytesIn":`...)
	dst = strconv.AppendInt(dst, e.BytesIn, 10)
	dst = append(dst, `,"bytesOut":`...)
	dst = strconv.AppendInt(dst, e.BytesOut, 10)
	dst = append(dst, `,"durationMs":`...)
	dst = appendMs(dst, e.Duration)
	dst = append(dst, `,"termination":`...)
	dst = appendJSONString(dst, e.Termination)
	return append(dst, '}')
}

// appendMs appends d in milliseconds with three decimals; a negative d
// (no such time) is -1.
func appendMs(dst []byte, d time.Duration) []byte {
	if d < 0 {
		return append(dst, "-1"...)
	}
	dst = strconv.AppendInt(dst, int64(d/time.Millisecond), 10)
	us := int64(d%time.Millisecond) / int64(time.Microsecond)
	dst = append(dst, '.', byte('0'+us/100), byte('0'+us/10%10), byte('0'+us%10))
	return dst
}

func appendJSONAddrPort(dst []byte, ap netip.AddrPort) []byte {
	if !ap.IsValid() {
		return append(dst, `""`...)
	}
	n := len(dst)
	dst = ap.AppendTo(append(dst, '"'))
	for _, c := range dst[n+1:] {
		if c < 0x20 || c >= utf8.RuneSelf || c == '"' || c == '\\' { // only in an IPv6 zone (an interface name)
			return appendJSONString(dst[:n], ap.String())
		}
	}
	return append(dst, '"')
}

const hexDigits = "0123456789abcdef"

// appendJSONString appends s as a JSON string.
func appendJSONString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c != '"' && c != '\\' && c < utf8.RuneSelf {
			i++
			continue
		}
		if c < utf8.RuneSelf {
			dst = append(dst, s[start:i]...)
			switch c {
			case '"', '\\':
				dst = append(dst, '\\', c)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' { // line separators to JavaScript readers
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\u202`...)
			dst = append(dst, hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// AppendHAProxy appends e to dst as HAProxy logs it, without a line feed
// and without the syslog header: an HTTP entry as "option httplog" does,
//
//	client:port [date] frontend backend/server TR/Tw/Tc/Tr/Ta status bytes - - term ac/fc/bc/sc/retries sq/bq {host|user-agent} "method uri proto"
//
// a TCP or UDP entry as "option tcplog" does,
//
//	client:port [date] frontend backend/server Tw/Tc/Tt bytes term ac/fc/bc/sc/retries sq/bq
//
// The date is the entry's time in UTC. Fields Fulcrum does not record are
// -1 (timers) or 0 (counts of connections and queues); the mapping is in
// docs/observability.md. Every byte a client controls that is a control
// character, a space, not ASCII, or one of `"#{|}` is written as #XX (its
// hexadecimal code), as HAProxy escapes logged headers, so a line cannot
// be split or its fields shifted.
func AppendHAProxy(dst []byte, e *Entry) []byte {
	dst = appendHAAddrPort(dst, e.Client)
	dst = append(dst, " ["...)
	dst = e.Time.UTC().AppendFormat(dst, "02/Jan/2006:15:04:05.000")
	dst = append(dst, "] "...)
	dst = appendHAName(dst, e.VSName)
	dst = append(dst, ' ')
	if e.SubVS != 0 {
		dst = appendHAName(dst, e.SubVSName)
	} else {
		dst = appendHAName(dst, e.VSName)
	}
	dst = append(dst, '/')
	if e.Server == "" {
		dst = append(dst, "<NOSRV>"...)
	} else {
		dst = appendHAEscaped(dst, e.Server)
	}
	dst = append(dst, ' ')
	term := termination(e.Termination)
	if e.Kind == KindHTTP {
		dst = append(dst, "-1/0/-1/"...) // TR, Tw, Tc
		dst = appendHAms(dst, e.TTFB)
		dst = append(dst, '/')
		dst = appendHAms(dst, e.Duration)
		dst = append(dst, ' ')
		if e.Status > 0 {
			dst = strconv.AppendInt(dst, int64(e.Status), 10)
		} else {
			dst = append(dst, "-1"...)
		}
		dst = append(dst, ' ')
		dst = strconv.AppendInt(dst, e.BytesOut, 10)
		dst = append(dst, " - - "...)
		dst = append(dst, term...)
		dst = append(dst, "-- 0/0/0/0/"...)
		dst = strconv.AppendInt(dst, int64(e.Retries), 10)
		dst = append(dst, " 0/0 {"...)
		dst = appendHAEscaped(dst, e.Host)
		dst = append(dst, '|')
		dst = appendHAEscaped(dst, e.UserAgent)
		dst = append(dst, "} \""...)
		if e.Method == "" {
			dst = append(dst, "<BADREQ>"...)
		} else {
			dst = appendHAEscaped(dst, e.Method)
			dst = append(dst, ' ')
			dst = appendHAEscaped(dst, e.URI)
			dst = append(dst, ' ')
			dst = appendHAEscaped(dst, e.Proto)
		}
		return append(dst, '"')
	}
	dst = append(dst, "0/-1/"...) // Tw, Tc
	dst = appendHAms(dst, e.Duration)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, e.BytesOut, 10)
	dst = append(dst, ' ')
	dst = append(dst, term...)
	dst = append(dst, " 0/0/0/0/"...)
	dst = strconv.AppendInt(dst, int64(e.Retries), 10)
	return append(dst, " 0/0"...)
}

// termination returns HAProxy's two-character termination state of an
// Entry.Termination: the cause (C client, S server, s server timeout, c
// client-side timeout, P proxy, R resource, K killed by the proxy, -
// none) and the stage (R request, C connect, H headers, D data, -).
func termination(t string) string {
	switch t {
	case "":
		return "--"
	case "client-abort":
		return "CD"
	case "server-abort":
		return "SD"
	case "server-timeout":
		return "sH"
	case "no-server", "connect-failed":
		return "SC"
	case "bad-response":
		return "PH"
	case "idle-timeout":
		return "cD"
	case "evicted":
		return "RD"
	case "closed":
		return "KD"
	}
	return "PD"
}

// appendHAms appends d in whole milliseconds, -1 for a negative d.
func appendHAms(dst []byte, d time.Duration) []byte {
	if d < 0 {
		return append(dst, "-1"...)
	}
	return strconv.AppendInt(dst, int64(d/time.Millisecond), 10)
}

func appendHAAddrPort(dst []byte, ap netip.AddrPort) []byte {
	if !ap.IsValid() {
		return append(dst, "-:-"...)
	}
	return ap.AppendTo(dst)
}

// appendHAName appends a service name, "-" when empty.
func appendHAName(dst []byte, s string) []byte {
	if s == "" {
		return append(dst, '-')
	}
	return appendHAEscaped(dst, s)
}

// haEscape reports the bytes AppendHAProxy writes as #XX.
func haEscape(c byte) bool {
	return c <= ' ' || c >= 0x7f || c == '"' || c == '#' || c == '{' || c == '|' || c == '}'
}

const upperHex = "0123456789ABCDEF"

func appendHAEscaped(dst []byte, s string) []byte {
	start := 0
	for i := 0; i < len(s); i++ {
		if c := s[i]; haEscape(c) {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '#', upperHex[c>>4], upperHex[c&0xf])
			start = i + 1
		}
	}
	return append(dst, s[start:]...)
}
