package l7

import (
	"bytes"
	"net/netip"

	"github.com/fulcrum-lb/fulcrum/internal/l7/h1"
)

// clientConn is the RequestInfo of its current request.

// Path implements rules.Request.
func (cc *clientConn) Path() []byte { return cc.path }

// Target implements rules.Request.
func (cc *clientConn) Target() []byte { return cc.target }

// Query implements rules.Request.
func (cc *clientConn) Query() []byte { return cc.query }

// Host implements rules.Request.
func (cc *clientConn) Host() []byte { return cc.host }

// Body implements rules.Request.
func (cc *clientConn) Body() []byte { return cc.body }

// Header implements rules.Request.
func (cc *clientConn) Header(name string) []byte {
	if equalFoldString(name, "host") {
		return cc.req.Host
	}
	return cc.req.Get(name)
}

// Cookie implements RequestInfo.
func (cc *clientConn) Cookie(name string) []byte {
	for i := range cc.req.Fields {
		if f := &cc.req.Fields[i]; f.Kind == h1.KindCookie && !f.Hop {
			if v := cookieValue(f.Value, name); v != nil {
				return v
			}
		}
	}
	return nil
}

// Client implements RequestInfo.
func (cc *clientConn) Client() netip.AddrPort { return cc.client }

// IsTLS implements RequestInfo.
func (cc *clientConn) IsTLS() bool { return cc.isTLS }

// VisitFields implements Fields for the request; Host is included.
func (cc *clientConn) VisitFields(fn func(name, value []byte)) {
	fn([]byte("Host"), cc.req.Host)
	visit(&cc.req, fn)
}

// respFields is the response of a clientConn as Fields.
type respFields struct{ cc *clientConn }

// VisitFields implements Fields.
func (r respFields) VisitFields(fn func(name, value []byte)) { visit(&r.cc.resp, fn) }

func visit(h *h1.Head, fn func(name, value []byte)) {
	for i := range h.Fields {
		if f := &h.Fields[i]; !f.Hop {
			fn(f.Name, f.Value)
		}
	}
}

// cookieValue finds name=value in a Cookie header value.
func cookieValue(h []byte, name string) []byte {
	for len(h) > 0 {
		var part []byte
		if i := bytes.IndexByte(h, ';'); i >= 0 {
			part, h = h[:i], h[i+1:]
		} else {
			part, h = h, nil
		}
		part = bytes.TrimSpace(part)
		if eq := bytes.IndexByte(part, '='); eq >= 0 && string(part[:eq]) == name {
			v := part[eq+1:]
			if len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' {
				v = v[1 : len(v)-1]
			}
			return v
		}
	}
	return nil
}

func equalFoldString(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if x != y && x|0x20 != y|0x20 {
			return false
		}
	}
	return true
}

// reqEditor applies header and URL rules to the request.
type reqEditor struct{ cc *clientConn }

// AddHeader implements rules.Editor.
func (e reqEditor) AddHeader(name, value []byte) { addField(&e.cc.req, name, value) }

// DelHeader implements rules.Editor.
func (e reqEditor) DelHeader(name string) { delField(&e.cc.req, name) }

// EditHeader implements rules.Editor.
func (e reqEditor) EditHeader(name string, fn func([]byte) ([]byte, bool)) {
	editField(&e.cc.req, name, fn)
}

// URL implements rules.Editor.
func (e reqEditor) URL() []byte { return e.cc.target }

// SetURL implements rules.Editor; only origin-form targets are accepted.
func (e reqEditor) SetURL(u []byte) {
	if len(u) > 0 && u[0] == '/' {
		e.cc.target = u
		e.cc.path, e.cc.query = splitTarget(u)
	}
}

// respEditor applies header and URL rules to the response; its URL is the
// Location header.
type respEditor struct{ cc *clientConn }

// AddHeader implements rules.Editor.
func (e respEditor) AddHeader(name, value []byte) { addField(&e.cc.resp, name, value) }

// DelHeader implements rules.Editor.
func (e respEditor) DelHeader(name string) { delField(&e.cc.resp, name) }

// EditHeader implements rules.Editor.
func (e respEditor) EditHeader(name string, fn func([]byte) ([]byte, bool)) {
	editField(&e.cc.resp, name, fn)
}

// URL implements rules.Editor.
func (e respEditor) URL() []byte { return e.cc.resp.Get("Location") }

// SetURL implements rules.Editor.
func (e respEditor) SetURL(u []byte) {
	editField(&e.cc.resp, "Location", func([]byte) ([]byte, bool) { return u, true })
}

func addField(h *h1.Head, name, value []byte) {
	h.Fields = append(h.Fields, h1.Field{Name: name, Value: value})
}

func delField(h *h1.Head, name string) {
	for i := range h.Fields {
		if f := &h.Fields[i]; !f.Hop && equalFoldString(string(f.Name), name) {
			f.Hop = true
		}
	}
}

func editField(h *h1.Head, name string, fn func([]byte) ([]byte, bool)) {
	for i := range h.Fields {
		f := &h.Fields[i]
		if f.Hop || !equalFoldString(string(f.Name), name) {
			continue
		}
		if nv, ok := fn(f.Value); ok {
			f.Value = nv
		}
	}
}
