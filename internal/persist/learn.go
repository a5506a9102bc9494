package persist

import (
	"net/http"

	"github.com/fulcrum-lb/fulcrum/internal/backend"
)

// OnResponse is called by the layer-7 proxy with each response header h
// that srv sent for the request in. For the server cookie modes it learns
// the cookie (a Set-Cookie of the configured name stores its value for
// srv; one that deletes the cookie forgets the client's current value).
// For the active cookie modes it returns the Set-Cookie header value the
// proxy must add to the response (a signed token naming srv) when the
// request did not carry a valid one for srv, or, with Refresh, when the
// one it carried is past half its life; otherwise "". Other modes return
// "".
func (p *Persister) OnResponse(in *Input, srv *backend.Server, h http.Header) string {
	i, ok := p.byPtr[srv]
	if !ok {
		return ""
	}
	now := p.set.Now()
	switch {
	case p.spec.kind == kindLearned && p.set.Mode != ModeSSL:
		for _, line := range h.Values("Set-Cookie") {
			c, err := http.ParseSetCookie(line)
			if err != nil || c.Name != p.set.Name {
				continue
			}
			if c.Value == "" || c.MaxAge < 0 || (!c.Expires.IsZero() && !c.Expires.After(now)) {
				if old := requestCookie(in, p.set.Name); old != "" {
					p.table.Delete(p.stringKey(tagCookie, "", old))
				}
				continue
			}
			p.table.Store(p.stringKey(tagCookie, "", c.Value), p.ids[i], now, p.ttl)
		}
	case p.signer != nil:
		if tok := requestCookie(in, p.set.Name); tok != "" {
			if id, exp, err := p.signer.verify(tok, now); err == nil {
				same := id == p.sids[i] || id.hostPart() == p.sids[i].hostPart()
				if same && (!p.set.Refresh || exp.Sub(now) > p.ttl/2) {
					return ""
				}
				// The client is stuck to another server that only had no
				// room for this request: it stays stuck there.
				if j, ok := p.tokenServer(id); !same && ok && p.alive(p.servers[j]) {
					return ""
				}
			}
		}
		c := http.Cookie{
			Name:     p.set.Name,
			Value:    p.signer.issue(p.sids[i], now.Add(p.ttl)),
			Path:     "/",
			HttpOnly: true,
			Secure:   in.HTTP != nil && in.HTTP.TLS != nil,
			SameSite: http.SameSiteLaxMode,
		}
		return c.String()
	}
	return ""
}

// LearnTLSSession records, for mode ssl, that the TLS session id belongs
// to srv. A layer-4 proxy calls it with the session ID of a ServerHello
// that does not select TLS 1.3 (see ParseHello); a layer-7 proxy that has
// its own stable session identity may call it too. Other modes ignore it.
func (p *Persister) LearnTLSSession(id []byte, srv *backend.Server) {
	if p.set.Mode != ModeSSL || len(id) == 0 {
		return
	}
	if i, ok := p.byPtr[srv]; ok {
		p.table.Store(p.bytesKey(tagTLS, id), p.ids[i], p.set.Now(), p.ttl)
	}
}
