package l7

import (
	"bufio"
	"net/http"
	"net/netip"

	"github.com/fulcrum-lb/fulcrum/internal/l7/h1"
)

// This file is the forwarding-header policy, the same for HTTP/1.1 and
// HTTP/2 clients: which of the client's forwarding headers (X-Forwarded-*,
// Forwarded, X-Real-IP, X-ClientSide, their underscore spellings) reach
// the real server, depending on whether the client is one of the trusted
// proxies, and which ones Fulcrum adds under the service's AddVia mode.
// Its two serialisers write a request head to a real server from an
// HTTP/1.1 head (writeH1Fields) or from an HTTP/2 request's http.Header
// (writeH2Fields); both end with writeOwn.

// The values Fulcrum adds to Via (RFC 9110 §7.6.3: the protocol version
// the client spoke and a pseudonym).
const (
	viaValue   = "1.1 fulcrum"
	viaValue10 = "1.0 fulcrum"
	viaValue2  = "2.0 fulcrum"
)

// The forwarding headers each AddVia mode adds (LoadMaster AddVia 0-6).
func addsXFF(mode string) bool {
	return mode == "xff" || mode == "xff-via" || mode == "xff-novia"
}

func addsVia(mode string) bool {
	return mode == "xff-via" || mode == "clientside-via" || mode == "via"
}

func addsClientSide(mode string) bool {
	return mode == "clientside" || mode == "clientside-via"
}

// trusted reports whether client is one of the trusted proxies.
func trusted(list []netip.Prefix, client netip.Addr) bool {
	for _, p := range list {
		if p.Contains(client) {
			return true
		}
	}
	return false
}

// isXFF reports whether f is X-Forwarded-For.
func isXFF(f *h1.Field) bool {
	return f.Kind == h1.KindXForwarded && len(f.Name) == 15 && (f.Name[12]|0x20) == 'f'
}

// isXFProto reports whether f is X-Forwarded-Proto.
func isXFProto(f *h1.Field) bool {
	return f.Kind == h1.KindXForwarded && len(f.Name) == 17 && (f.Name[12]|0x20) == 'p'
}

// fwdHeader names a forwarding header: one that Fulcrum sets, or filters
// from untrusted clients.
type fwdHeader uint8

// The forwarding headers.
const (
	fwdNone       fwdHeader = iota
	fwdFor                  // X-Forwarded-For
	fwdProto                // X-Forwarded-Proto
	fwdXForwarded           // any other X-Forwarded-*
	fwdForwarded            // Forwarded
	fwdRealIP               // X-Real-IP
	fwdClientSide           // X-ClientSide
)

// forwardingHeader tells which forwarding header a request header named
// name is, comparing without regard to case and with '_' taken as '-':
// CGI-style servers (and the frameworks that follow them) map
// X_Forwarded_For and X-Forwarded-For to the same variable, so the
// underscore spellings must be filtered with the hyphen ones. alias
// reports a name that spells at least one of the hyphens as '_'. It works
// on HTTP/1.1 field names and on HTTP/2 header keys alike, and allocates
// nothing.
func forwardingHeader[T ~string | ~[]byte](name T) (h fwdHeader, alias bool) {
	n := len(name)
	if n < 9 {
		return fwdNone, false
	}
	switch name[0] | 0x20 {
	case 'f':
		if n == 9 && dashFold(name, 0, "forwarded") {
			return fwdForwarded, false // no hyphen: no alias
		}
		return fwdNone, false
	case 'x':
	default:
		return fwdNone, false
	}
	switch {
	case n == 9 && dashFold(name, 0, "x-real-ip"):
		h = fwdRealIP
	case n == 12 && dashFold(name, 0, "x-clientside"):
		h = fwdClientSide
	case n > 12 && dashFold(name, 0, "x-forwarded-"):
		switch {
		case n == 15 && dashFold(name, 12, "for"):
			h = fwdFor
		case n == 17 && dashFold(name, 12, "proto"):
			h = fwdProto
		default:
			h = fwdXForwarded
		}
	default:
		return fwdNone, false
	}
	for i := range n {
		if name[i] == '_' {
			return h, true
		}
	}
	return h, false
}

// dashFold reports whether name[off:off+len(s)] equals the lower-case s
// without regard to case, a '_' in name standing for a '-' in s.
func dashFold[T ~string | ~[]byte](name T, off int, s string) bool {
	for i := range len(s) {
		c := name[off+i]
		if 'A' <= c && c <= 'Z' {
			c += 'a' - 'A'
		} else if c == '_' {
			c = '-'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// fwdAction is what becomes of a forwarding header a client sent.
type fwdAction uint8

// The actions of forwardingAction.
const (
	fwdPass  fwdAction = iota // sent on as it is
	fwdDrop                   // removed
	fwdMerge                  // a trusted proxy's X-Forwarded-For: its values go first in Fulcrum's
)

// forwardingAction says what becomes of a client's request header named
// name (see forwardingHeader), for a client that is one of the trusted
// proxies or not, under the service's AddVia mode. From an untrusted
// client every forwarding header is dropped, underscore spellings
// included. From a trusted proxy the hyphen spellings are kept (its
// X-Forwarded-For merged into Fulcrum's when Fulcrum adds one), and the
// underscore spellings of the headers Fulcrum adds in this mode
// (X_Forwarded_For and X_Forwarded_Proto with xff, X_ClientSide with
// clientside) are dropped, so that no server sees two values for one
// variable. Headers that are not forwarding headers pass.
//
// The HTTP/1.1 path classifies the hyphen spellings at parse time
// (h1.Kind) and asks only about the rest; the HTTP/2 path can ask about
// every header key.
func forwardingAction[T ~string | ~[]byte](name T, trust bool, mode string) (fwdHeader, fwdAction) {
	h, alias := forwardingHeader(name)
	switch {
	case h == fwdNone:
		return h, fwdPass
	case !trust:
		return h, fwdDrop
	case alias:
		if (h == fwdFor || h == fwdProto) && addsXFF(mode) || h == fwdClientSide && addsClientSide(mode) {
			return h, fwdDrop
		}
		return h, fwdPass
	case h == fwdFor && addsXFF(mode):
		return h, fwdMerge
	}
	return h, fwdPass
}

// forwarding is the forwarding-header policy applied to one request.
type forwarding struct {
	trust      bool   // the client is one of the trusted proxies
	mode       string // the service's AddVia mode
	xff        bool   // Fulcrum adds X-Forwarded-For and X-Forwarded-Proto
	clientSide bool   // Fulcrum adds X-ClientSide
	via        bool   // Fulcrum adds Via
}

// newForwarding returns the policy of cfg for a request from client.
func newForwarding(cfg *ServiceConfig, client netip.Addr) forwarding {
	mode := cfg.AddVia
	return forwarding{
		trust:      len(cfg.TrustedProxies) > 0 && trusted(cfg.TrustedProxies, client),
		mode:       mode,
		xff:        addsXFF(mode),
		clientSide: addsClientSide(mode),
		via:        addsVia(mode),
	}
}

// writeH1Fields writes the end-to-end fields of an HTTP/1.1 request r
// (hop-by-hop ones, including those the client named in Connection, are
// left out) that the policy keeps, and reports whether a trusted proxy
// sent X-Forwarded-Proto. A trusted proxy's X-Forwarded-For is left for
// writeOwn when Fulcrum adds its own.
func (fw *forwarding) writeH1Fields(w *bufio.Writer, r *h1.Head) (hasProto bool) {
	for i := range r.Fields {
		f := &r.Fields[i]
		if f.Hop {
			continue
		}
		switch f.Kind {
		case h1.KindXForwarded:
			if !fw.trust {
				continue
			}
			if fw.xff && isXFF(f) {
				continue // merged by writeOwn
			}
			if isXFProto(f) {
				hasProto = true
			}
		case h1.KindForwarded, h1.KindXRealIP, h1.KindXClientSide:
			if !fw.trust {
				continue
			}
		case h1.KindOther:
			// An underscore spelling of a forwarding header (X_Real_IP,
			// x_forwarded_for): h1 classifies only the hyphen ones.
			if len(f.Name) >= 9 && (f.Name[1] == '_' || f.Name[1] == '-') {
				if _, a := forwardingAction(f.Name, fw.trust, fw.mode); a == fwdDrop {
					continue
				}
			}
		}
		writeField(w, f.Name, f.Value)
	}
	return hasProto
}

// writeH2Fields writes the header fields h of an HTTP/2 request (its
// hop-by-hop ones already removed) that the policy keeps, leaving out
// values that are not valid in HTTP/1.1, and returns a trusted proxy's
// X-Forwarded-For values (for writeOwn, when Fulcrum adds its own) and
// whether it sent X-Forwarded-Proto.
func (fw *forwarding) writeH2Fields(w *bufio.Writer, h http.Header) (prior []string, hasProto bool) {
	for name, vs := range h {
		switch hdr, act := forwardingAction(name, fw.trust, fw.mode); act {
		case fwdDrop:
			continue // includes the underscore spellings (X_Forwarded_For)
		case fwdMerge:
			prior = vs
			continue
		default:
			if hdr == fwdProto {
				hasProto = true
			}
		}
		for _, v := range vs {
			if !h1.ValidValue([]byte(v)) {
				continue
			}
			_, _ = w.WriteString(name)
			_, _ = w.WriteString(": ")
			_, _ = w.WriteString(v)
			_, _ = w.WriteString("\r\n")
		}
	}
	return prior, hasProto
}

// priorXFF is a trusted proxy's X-Forwarded-For, from the source of
// either serialiser: the fields of an HTTP/1.1 head, or the values of an
// HTTP/2 request's header.
type priorXFF struct {
	h1 *h1.Head
	h2 []string
}

// writeOwn writes Fulcrum's own forwarding headers after the client's, as
// the mode says: X-Forwarded-For (a trusted proxy's non-empty values
// first, then clientIP) with X-Forwarded-Proto (proto, unless a trusted
// proxy sent one: hasProto), X-ClientSide, and Via (its value via: the
// protocol version the client spoke and Fulcrum's pseudonym).
func (fw *forwarding) writeOwn(w *bufio.Writer, prior priorXFF, clientIP []byte, proto string, hasProto bool, via string) {
	if fw.xff {
		_, _ = w.WriteString("X-Forwarded-For: ")
		if fw.trust {
			if r := prior.h1; r != nil {
				for i := range r.Fields {
					if f := &r.Fields[i]; !f.Hop && isXFF(f) && len(f.Value) > 0 {
						_, _ = w.Write(f.Value)
						_, _ = w.WriteString(", ")
					}
				}
			}
			for _, v := range prior.h2 {
				if v != "" && h1.ValidValue([]byte(v)) {
					_, _ = w.WriteString(v)
					_, _ = w.WriteString(", ")
				}
			}
		}
		_, _ = w.Write(clientIP)
		_, _ = w.WriteString("\r\n")
		if !hasProto {
			_, _ = w.WriteString("X-Forwarded-Proto: ")
			_, _ = w.WriteString(proto)
			_, _ = w.WriteString("\r\n")
		}
	}
	if fw.clientSide {
		_, _ = w.WriteString("X-ClientSide: ")
		_, _ = w.Write(clientIP)
		_, _ = w.WriteString("\r\n")
	}
	if fw.via {
		_, _ = w.WriteString("Via: ")
		_, _ = w.WriteString(via)
		_, _ = w.WriteString("\r\n")
	}
}
