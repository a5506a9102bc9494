package l7

import (
	"bufio"
	"net/netip"
	"time"

	"github.com/fulcrum-lb/fulcrum/internal/l7/h1"
)

// viaValue is what Fulcrum adds to Via (RFC 9110 §7.6.3: protocol version
// and a pseudonym).
const viaValue = "1.1 fulcrum"

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

// bodyClock enforces BodyTimeout and BodyMinRate on one body moved from
// or to a client. Only the time spent waiting for the client counts
// (reads of a request body from it, writes of a response to it), so that
// a slow real server never uses up the client's allowance; the real
// server's side is bounded by BodyTimeout without progress alone. The
// zero value is the clock of a body that has not started.
//
// Use: reset it when the body starts, add every read from (write to) the
// client with its duration and byte count, and when refreshing the
// client connection's deadline (at most once a second), set it to
// now.Add(allow(...)); a non-positive allowance means the client is
// already too slow.
type bodyClock struct {
	waited time.Duration // spent in reads from (writes to) the client
	moved  int64         // bytes those reads (writes) moved
}

// add records one read from (write to) the client that took d and moved
// n bytes.
func (k *bodyClock) add(d time.Duration, n int) {
	k.waited += d
	k.moved += int64(n)
}

// allow returns how much longer Fulcrum may wait for the client: timeout
// (the limit without progress), or less once the client has taken longer
// than timeout plus one second per rate bytes moved (rate <= 0: no
// minimum rate).
func (k *bodyClock) allow(timeout time.Duration, rate int64) time.Duration {
	if rate <= 0 || k.moved >= 1<<33 { // 8 GiB earn more than any timeout
		return timeout
	}
	left := timeout + time.Duration(k.moved)*time.Second/time.Duration(rate) - k.waited
	return min(left, timeout)
}

// writeRequestHead writes the request head forwarded to a real server:
// the request line with the (possibly rewritten) target, Host, the
// client's end-to-end fields (hop-by-hop ones, including those the client
// named in Connection, are gone; so are forwarding headers from untrusted
// clients), then Fulcrum's own forwarding headers and the framing.
func writeRequestHead(w *bufio.Writer, cc *clientConn, st *state, pl *Pool) {
	r := &cc.req
	cfg := &st.cfg
	_, _ = w.Write(r.Method)
	_ = w.WriteByte(' ')
	_, _ = w.Write(cc.target)
	_, _ = w.WriteString(" HTTP/1.1\r\nHost: ")
	if pl.HostRewrite != "" {
		_, _ = w.WriteString(pl.HostRewrite)
	} else {
		_, _ = w.Write(r.Host)
	}
	_, _ = w.WriteString("\r\n")
	trust := len(cfg.TrustedProxies) > 0 && trusted(cfg.TrustedProxies, cc.client.Addr())
	mode := cfg.AddVia
	xff := addsXFF(mode)
	hasProto := false
	for i := range r.Fields {
		f := &r.Fields[i]
		if f.Hop {
			continue
		}
		switch f.Kind {
		case h1.KindXForwarded:
			if !trust {
				continue
			}
			if xff && isXFF(f) {
				continue // merged below
			}
			if isXFProto(f) {
				hasProto = true
			}
		case h1.KindForwarded, h1.KindXRealIP, h1.KindXClientSide:
			if !trust {
				continue
			}
		case h1.KindOther:
			// An underscore spelling of a forwarding header (X_Real_IP,
			// x_forwarded_for): h1 classifies only the hyphen ones.
			if len(f.Name) >= 9 && (f.Name[1] == '_' || f.Name[1] == '-') {
				if _, a := forwardingAction(f.Name, trust, mode); a == fwdDrop {
					continue
				}
			}
		}
		writeField(w, f.Name, f.Value)
	}
	if xff {
		_, _ = w.WriteString("X-Forwarded-For: ")
		if trust {
			for i := range r.Fields {
				if f := &r.Fields[i]; !f.Hop && isXFF(f) && len(f.Value) > 0 {
					_, _ = w.Write(f.Value)
					_, _ = w.WriteString(", ")
				}
			}
		}
		_, _ = w.Write(cc.clientIP)
		_, _ = w.WriteString("\r\n")
		if !hasProto {
			if cc.isTLS {
				_, _ = w.WriteString("X-Forwarded-Proto: https\r\n")
			} else {
				_, _ = w.WriteString("X-Forwarded-Proto: http\r\n")
			}
		}
	}
	if addsClientSide(mode) {
		_, _ = w.WriteString("X-ClientSide: ")
		_, _ = w.Write(cc.clientIP)
		_, _ = w.WriteString("\r\n")
	}
	if addsVia(mode) {
		if r.Minor == 0 {
			_, _ = w.WriteString("Via: 1.0 fulcrum\r\n")
		} else {
			_, _ = w.WriteString("Via: " + viaValue + "\r\n")
		}
	}
	if r.Upgrade != nil {
		_, _ = w.WriteString("Connection: Upgrade\r\nUpgrade: ")
		_, _ = w.Write(r.Upgrade)
		_, _ = w.WriteString("\r\n")
	}
	if r.Expect100 {
		_, _ = w.WriteString("Expect: 100-continue\r\n")
	}
	if r.TrailersOK {
		_, _ = w.WriteString("TE: trailers\r\n")
	}
	switch {
	case r.Chunked:
		_, _ = w.WriteString("Transfer-Encoding: chunked\r\n")
	case r.ContentLength >= 0:
		writeContentLength(w, r.ContentLength)
	}
	_, _ = w.WriteString("\r\n")
}
