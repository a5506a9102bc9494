package persist

import (
	"net/http"
	"net/netip"

	"github.com/fulcrum-lb/fulcrum/internal/balance"
)

// Input is what a proxy knows about a connection or request, for the
// persistence modes and for the Picker behind them.
type Input struct {
	// Request is what the scheduling method sees: the client address (also
	// the key of the source-IP modes), SNI, hash key, servers to avoid.
	Request balance.Request
	// HTTP is the request, for the HTTP modes (super, cookies, url,
	// query-hash, host, header); nil outside HTTP. Only its Host, URL,
	// Header (and cookies in it) and TLS fields are read.
	HTTP *http.Request
	// TLSSession is a TLS session identity that the client presents again
	// when it resumes: for TLS ≤ 1.2, the session ID of the ClientHello
	// (see ParseHello). Mode ssl looks it up; LearnTLSSession stores it.
	TLSSession []byte
	// SIP is the SIP message (the datagram, or the first message of a TCP
	// connection) for mode udpsip, which keys on its Call-ID.
	SIP []byte
}

// requestCookie returns the value of the request's cookie name, or "".
func requestCookie(in *Input, name string) string {
	if in.HTTP == nil {
		return ""
	}
	c, err := in.HTTP.Cookie(name)
	if err != nil {
		return ""
	}
	return c.Value
}

// maskAddr returns the client address with the configured prefix applied.
func (p *Persister) maskAddr(a netip.Addr) netip.Addr {
	a = a.Unmap()
	bits := p.set.Mask
	if a.Is6() {
		bits = p.set.Mask6
	}
	if bits == 0 {
		return a
	}
	pfx, err := a.Prefix(bits)
	if err != nil {
		return a
	}
	return pfx.Addr()
}
