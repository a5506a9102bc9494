package health

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/sockopt"
)

// Checker runs one kind of health check against a target. Implementations
// are stateless and safe for concurrent use; Check returns when the check
// is decided or ctx ends, whichever comes first.
type Checker interface {
	Check(ctx context.Context, t Target) Result
}

// Target is the address a check connects to: the real server's check
// address (or its address) and the check port (or its port).
type Target struct {
	// Address is an IP address or DNS name.
	Address string
	// Port is 1-65535; icmp checks ignore it.
	Port int
	// Mark is the packet mark (SO_MARK) of the check's sockets: the mark
	// of the service's own default gateway (netcfg.Plan), so that the
	// check takes the route the service's traffic takes; 0 sets none.
	// Setting it needs CAP_NET_ADMIN; when it cannot be set the check
	// fails and says so.
	Mark uint32 `json:",omitempty"`
}

// String returns "address:port" ("[v6]:port" for IPv6).
func (t Target) String() string { return net.JoinHostPort(t.Address, strconv.Itoa(t.Port)) }

// Result is the outcome of one check.
type Result struct {
	// Up is true when the check passed.
	Up bool
	// Reason says what was seen, e.g. "https 503 from 127.0.0.5:4443/" or
	// "tcp 127.0.0.5:80: connection refused".
	Reason string
	// Latency is the time from the start of the check to its answer.
	Latency time.Duration
}

// The check types, as in config.CheckTypes.
const (
	TypeICMP   = "icmp"
	TypeTCP    = "tcp"
	TypeHTTP   = "http"
	TypeHTTPS  = "https"
	TypeSMTP   = "smtp"
	TypeNNTP   = "nntp"
	TypeFTP    = "ftp"
	TypeTelnet = "telnet"
	TypePOP3   = "pop3"
	TypeIMAP   = "imap"
	TypeLDAP   = "ldap"
	TypeBData  = "bdata"
	TypeDNS    = "dns"
	TypeNone   = "none"
)

// Params are the settings of a check that do not depend on the real server
// checked: what NewChecker needs. They mirror config.HealthCheck.
type Params struct {
	// Type is one of the Type constants other than TypeNone.
	Type string
	// URL is the path of http and https checks; "" means "/".
	URL string
	// Method is HEAD, GET, POST or OPTIONS; "" means HEAD. A HEAD check
	// with a Pattern is sent as GET, since a HEAD answer has no body.
	Method string
	// HTTP11 sends HTTP/1.1 requests with a Host header; otherwise
	// HTTP/1.0 without one.
	HTTP11 bool
	// Host is the Host header of HTTP/1.1 checks and the TLS server name;
	// for dns checks, the name queried.
	Host string
	// Headers are extra request headers of http and https checks.
	Headers map[string]string
	// PostData is the body of POST checks.
	PostData string
	// Codes are status codes that count as Up besides 2xx, 301, 302, 401.
	Codes []int
	// Pattern is a regular expression the http(s) body must match, or the
	// hex-encoded bytes a bdata answer must contain.
	Pattern string
	// Send is the hex-encoded request of a bdata check.
	Send string
	// VerifyTLS verifies the server's certificate (https and STARTTLS).
	VerifyTLS bool
	// StartTLS upgrades smtp, nntp, ftp (AUTH TLS), pop3 (STLS) and imap
	// checks to TLS after the greeting; the handshake must succeed.
	StartTLS bool
	// RootCAs are the certificate authorities trusted when VerifyTLS is
	// set; nil means the system's.
	RootCAs *x509.CertPool
}

// Limits on what a check reads from a server.
const (
	maxBody     = 64 << 10 // http body read for Pattern
	maxResponse = 1 << 20  // whole http response head and body
	maxLine     = 4 << 10  // one line of a banner protocol
	maxLines    = 64       // lines of one multi-line reply
	maxBData    = 64 << 10 // bdata answer searched for Pattern
)

// NewChecker returns the Checker for p, or an error naming the offending
// field. Type none has no checker.
func NewChecker(p Params) (Checker, error) {
	switch p.Type {
	case TypeTCP:
		return tcpChecker{}, nil
	case TypeICMP:
		return icmpChecker{}, nil
	case TypeHTTP, TypeHTTPS:
		return newHTTPChecker(p)
	case TypeSMTP, TypeNNTP, TypeFTP, TypeTelnet, TypePOP3, TypeIMAP:
		return newBannerChecker(p)
	case TypeLDAP:
		return ldapChecker{}, nil
	case TypeBData:
		return newBDataChecker(p)
	case TypeDNS:
		return newDNSChecker(p)
	case TypeNone:
		return nil, errors.New("type: none has no checker")
	}
	return nil, fmt.Errorf("type: unknown check type %q", p.Type)
}

// dialer opens the connections of the TCP-based checks.
var dialer = net.Dialer{KeepAlive: -1}

// dialerFor returns the dialer of a check of t: the shared one, or, when
// t has a Mark, one whose sockets carry it.
func dialerFor(t Target) *net.Dialer {
	if t.Mark == 0 {
		return &dialer
	}
	d := dialer
	d.Control = markControl(t.Mark)
	return &d
}

// markControl returns a Control function (net.Dialer, net.ListenConfig)
// that sets the socket's mark; its failure is a *markError.
func markControl(mark uint32) func(network, address string, c syscall.RawConn) error {
	set := sockopt.Options{Mark: mark}.Control()
	return func(network, address string, c syscall.RawConn) error {
		if err := set(network, address, c); err != nil {
			return &markError{err: err}
		}
		return nil
	}
}

// markError is the failure to give a check's socket the service's packet
// mark: the check cannot take the route of the service's traffic.
type markError struct{ err error }

func (e *markError) Error() string {
	return "cannot mark the socket for the service's default gateway: " + e.err.Error() + " (needs CAP_NET_ADMIN)"
}

func (e *markError) Unwrap() error { return e.err }

// dial connects to t and ties the connection's deadline to ctx: when ctx
// ends (timeout or Close), blocked reads and writes return. Call stop
// before closing the connection.
func dial(ctx context.Context, network string, t Target) (c net.Conn, stop func(), err error) {
	c, err = dialerFor(t).DialContext(ctx, network, t.String())
	if err != nil {
		return nil, nil, err
	}
	return c, guard(ctx, c), nil
}

// guard sets c's deadline to ctx's and makes it expire when ctx ends.
func guard(ctx context.Context, c net.Conn) (stop func()) {
	if d, ok := ctx.Deadline(); ok {
		_ = c.SetDeadline(d)
	}
	s := context.AfterFunc(ctx, func() { _ = c.SetDeadline(time.Unix(1, 0)) })
	return func() { s() }
}

// tlsConfig returns the client TLS configuration for a check of t.
func tlsConfig(p Params, t Target) *tls.Config {
	name := p.Host
	if name == "" {
		name = t.Address
	}
	return &tls.Config{
		ServerName:         name,
		InsecureSkipVerify: !p.VerifyTLS, // the operator's choice (verifyTls); off by default as on LoadMaster
		RootCAs:            p.RootCAs,
		MinVersion:         tls.VersionTLS10,
	}
}

// describe turns an I/O error into the short text used in reasons.
func describe(err error) string {
	var ne net.Error
	var errno syscall.Errno
	var ve *tls.CertificateVerificationError
	var re tls.RecordHeaderError
	var me *markError
	switch {
	case errors.As(err, &me):
		return me.Error()
	case errors.Is(err, context.Canceled):
		return "cancelled"
	case errors.Is(err, os.ErrDeadlineExceeded), errors.Is(err, context.DeadlineExceeded),
		errors.As(err, &ne) && ne.Timeout():
		return "timed out"
	case errors.As(err, &ve):
		return "certificate: " + ve.Err.Error()
	case errors.As(err, &re):
		return "TLS handshake: server did not answer with TLS"
	case errors.As(err, &errno):
		return errno.Error()
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF):
		return "connection closed by the server"
	}
	return err.Error()
}

// down returns a failed Result "<typ> <target>: <what>".
func down(typ string, t Target, start time.Time, what string) Result {
	return Result{Reason: typ + " " + t.String() + ": " + what, Latency: time.Since(start)}
}

// up returns a passed Result.
func up(reason string, start time.Time) Result {
	return Result{Up: true, Reason: reason, Latency: time.Since(start)}
}

// clean makes text read from a server safe to show in a reason: printable,
// one line, at most 80 characters.
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r < 0x20 || r == 0x7f || r == '\uFFFD' {
			return -1
		}
		return r
	}, s)
	if len(s) > 80 {
		s = s[:80] + "…"
	}
	return s
}

// hasCtl reports whether s holds a control character (CR and LF
// included), which would let a setting inject lines into a request.
func hasCtl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f })
}

var tokenRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")

// sortedKeys returns the keys of m in order.
func sortedKeys(m map[string]string) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
