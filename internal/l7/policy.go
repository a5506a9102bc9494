package l7

import (
	"bufio"
	"net/netip"

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
