// Package accesslog writes the access logs of the services that have
// accessLog on: one line per HTTP request (layer 7), per TCP connection
// (layer 4) and per UDP session, as JSON or in HAProxy's format, to a file
// that is reopened on SIGHUP (logrotate) and to syslog hosts.
//
// The proxies fill an Entry and call Logger.Log; formatting and writing
// happen off the data path's critical section, and a full queue counts a
// drop rather than stall a request.
package accesslog

import (
	"net/netip"
	"time"
)

// Kinds of Entry.
const (
	// KindHTTP is one HTTP request of a layer-7 service.
	KindHTTP = "http"
	// KindTCP is one TCP connection of a layer-4 service.
	KindTCP = "tcp"
	// KindUDP is one UDP session.
	KindUDP = "udp"
)

// Entry is one access log record. Every field is listed, with its JSON
// name and its place in the HAProxy format, in docs/observability.md.
type Entry struct {
	// Time is when the request's head was read (HTTP) or the connection
	// accepted or the session's first datagram received.
	Time time.Time
	// Kind is KindHTTP, KindTCP or KindUDP.
	Kind string
	// VS is the virtual service's ID; VSName its nickname or
	// address:port.
	VS     int
	VSName string
	// SubVS is the ID of the SubVS that served the request (0: none);
	// SubVSName its nickname or "SubVS <id>".
	SubVS     int
	SubVSName string
	// Client is the client's address and port.
	Client netip.AddrPort
	// Frontend is the address and port the client connected to.
	Frontend netip.AddrPort
	// Server is the real server's "address:port" that served it, "" when
	// none did; ServerID is its configuration ID (0: none or the sorry
	// server).
	Server   string
	ServerID int
	// Method, Host, URI and Proto describe an HTTP request ("" for tcp
	// and udp); URI is the request target as received.
	Method string
	Host   string
	URI    string
	Proto  string
	// Status is the HTTP status sent to the client (0: none was sent).
	Status int
	// BytesIn are the bytes received from the client (request head and
	// body); BytesOut the bytes sent to it (response head and body).
	BytesIn  int64
	BytesOut int64
	// TTFB is the time from the request's head going out to a real
	// server to its response's head coming back; -1 when there was none.
	TTFB time.Duration
	// Duration is the request's (connection's, session's) total time.
	Duration time.Duration
	// Retries is the number of attempts beyond the first.
	Retries int
	// Termination says how it ended: "" normally, otherwise a short
	// reason ("client-abort", "server-abort", "server-timeout",
	// "no-server", "connect-failed", "bad-response", "idle-timeout").
	Termination string
	// UserAgent is the request's User-Agent (HTTP).
	UserAgent string
	// SNI is the TLS server name the client sent, "" without TLS or SNI.
	SNI string
}

// Logger receives the access log entries of the services whose accessLog
// is on. Log must not block and must not keep e after it returns (the
// caller reuses it). A nil Logger means access logging is off.
type Logger interface {
	Log(e *Entry)
}
