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
	"net"
	"net/netip"
	"sync"
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

// Conn is what the layer-4 and UDP proxies know of a connection or session
// when it ends.
type Conn struct {
	// Kind is KindTCP or KindUDP.
	Kind string
	// Born is when it began.
	Born time.Time
	// VS and VSName are the service's ID and name.
	VS     int
	VSName string
	// Client is the client's address; Local is the socket's own address
	// (a *net.TCPAddr or *net.UDPAddr, or nil).
	Client netip.AddrPort
	Local  net.Addr
	// Server and ServerID are the real server's address and ID; "" and 0
	// when there was none.
	Server   string
	ServerID int
	// BytesIn, BytesOut, Retries and Termination are Entry's.
	BytesIn, BytesOut int64
	Retries           int
	Termination       string
}

var entries = sync.Pool{New: func() any { return new(Entry) }}

// LogConn logs the entry of c to l (nil: nothing) without allocating: the
// entry comes from a pool and goes back to it.
func LogConn(l Logger, c *Conn) {
	if l == nil {
		return
	}
	e := entries.Get().(*Entry)
	*e = Entry{Time: c.Born, Kind: c.Kind, VS: c.VS, VSName: c.VSName, Client: Unmap(c.Client),
		Server: c.Server, ServerID: c.ServerID, BytesIn: c.BytesIn, BytesOut: c.BytesOut, TTFB: -1,
		Duration: time.Since(c.Born), Retries: c.Retries, Termination: c.Termination}
	switch a := c.Local.(type) {
	case *net.TCPAddr:
		e.Frontend = Unmap(a.AddrPort())
	case *net.UDPAddr:
		e.Frontend = Unmap(a.AddrPort())
	}
	l.Log(e)
	*e = Entry{}
	entries.Put(e)
}

// Unmap turns an IPv4-mapped IPv6 address (a dual-stack socket's) into
// IPv4.
func Unmap(ap netip.AddrPort) netip.AddrPort {
	return netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port())
}
