// Package persist implements LoadMaster's persistence modes: a decorator
// around any balance.Picker that sends a returning client back to the real
// server it used before, as long as that server can take it.
//
// A Persister is built per virtual service and configuration generation
// (with that generation's Picker and real servers); the entries live in a
// Table held by a Registry keyed by VS ID, outside the configuration, so
// they survive reloads while their virtual service exists, and name real
// servers by backend.Key. A service that follows another (port following)
// uses the other's Table.
//
// The decorator is protocol neutral: the proxies fill an Input with what
// they know (client address; for HTTP the request; for ssl a TLS session
// identity; for udpsip the SIP message). Layer-4 proxies call Pick (a
// balance.Picker) once per connection; the layer-7 proxy calls
// Conn().Pick per request, which applies "always check persist", and
// OnResponse per response, which learns server cookies and returns the
// Set-Cookie of active cookies. See docs/persistence-and-scheduling.md.
//
// Failure semantics: a client stuck to a real server that is Down,
// disabled (and not draining), gone from the configuration, or that the
// request avoids (its dial just failed) is scheduled again and stuck to
// the new server. A draining server keeps its persisted clients (but gets
// no new ones, since pickers skip it). A stuck server at its connection
// limit is not used for this connection, which is scheduled elsewhere, but
// the client stays stuck to it.
package persist

import (
	"slices"
	"time"
)

// The persistence modes, by their LoadMaster names (API `Persist`).
const (
	ModeNone            = "none"
	ModeSrc             = "src"
	ModeSuper           = "super"
	ModeSuperSrc        = "super-src"
	ModeCookie          = "cookie"
	ModeCookieSrc       = "cookie-src"
	ModeActiveCookie    = "active-cookie"
	ModeActiveCookieSrc = "active-cook-src"
	ModeCookieHash      = "cookie-hash"
	ModeCookieHashSrc   = "cookie-hash-src"
	ModeURL             = "url"
	ModeQueryHash       = "query-hash"
	ModeHost            = "host"
	ModeHeader          = "header"
	ModeSSL             = "ssl"
	ModeUDPSIP          = "udpsip"
)

// keyKind says how a mode's own key is used.
type keyKind int

const (
	kindNone    keyKind = iota // no key of its own (src: the source key is the key)
	kindStored                 // looked up, and stored after scheduling
	kindLearned                // looked up; stored only from what servers send (cookie, ssl)
	kindToken                  // carried by the client in a signed cookie (active cookies)
)

// spec describes a mode.
type spec struct {
	kind      keyKind
	src       bool // the source address is a key (src) or the fallback (-src)
	needsHTTP bool
}

// Modes returns every persistence mode, sorted.
func Modes() []string {
	out := make([]string, 0, len(specs))
	for m := range specs {
		out = append(out, m)
	}
	slices.Sort(out)
	return out
}

// NeedsHTTP reports whether mode reads HTTP requests (and so needs a
// layer-7 service to do anything beyond its source-IP fallback).
func NeedsHTTP(mode string) bool { return specs[mode].needsHTTP }

// Always is "always check persist" (LoadMaster `alwayspersist`): when the
// layer-7 proxy consults persistence for the requests of one client
// connection.
type Always int

const (
	// AlwaysNo checks persistence on the first request of a connection;
	// later requests go to the same real server while it can take them.
	AlwaysNo Always = iota
	// AlwaysYes checks every request: each goes where its own key says, and
	// a request with an unknown key is scheduled afresh.
	AlwaysYes
	// AlwaysAcceptChanges checks every request, and a request whose key is
	// unknown (a client that just logged in and now sends Authorization, a
	// new cookie) is stuck to the server its connection already uses rather
	// than scheduled afresh: the change of key is accepted.
	AlwaysAcceptChanges
)

// Limits and defaults of Settings.
const (
	// MaxTimeout is the longest persistence timeout (28 days).
	MaxTimeout = 28 * 24 * time.Hour
	// DefaultTimeout is used when Settings.Timeout is 0.
	DefaultTimeout = 30 * time.Minute
	// DefaultActiveCookie is the cookie name of the active cookie modes.
	DefaultActiveCookie = "FULCRUM"
)

// Settings configure a Persister.
type Settings struct {
	// Mode is one of the Mode constants.
	Mode string
	// Timeout is how long an entry lives (after it was stored or, with
	// Refresh, last used); 0 means DefaultTimeout; at most MaxTimeout.
	Timeout time.Duration
	// Refresh restarts an entry's timeout every time it is used
	// (LoadMaster `RefreshPersist`).
	Refresh bool
	// Name is the cookie name of the cookie modes (required for cookie and
	// cookie-src; DefaultActiveCookie for the active ones when empty) or the
	// header name of mode header (required).
	Name string
	// QueryTag is the query item hashed by mode query-hash (required).
	QueryTag string
	// Mask is the prefix length applied to IPv4 client addresses by the
	// source-IP parts of the modes, 1-32; 0 means 32.
	Mask int
	// Mask6 is the prefix length applied to IPv6 client addresses, 1-128;
	// 0 means 128.
	Mask6 int
	// Always is "always check persist", used by Conn.
	Always Always
	// Secret is the per-install secret that signs active cookies; at least
	// MinSecretLen bytes; required by the active cookie modes.
	Secret []byte
	// Now is the clock; nil means time.Now.
	Now func() time.Time
}
